// The pack as the Pulumi CLI runs it: `policy/` started by the SDK's own
// policy-pack runner (ts-node, the pack's PolicyPack constructor, its gRPC
// analyzer server), configured and called over gRPC the way the engine does
// for `pulumi preview --policy-pack policy --policy-pack-config ...`. What it
// reports must be what the tests' adapter (test/support/policy.ts) reports.
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import {
    AnalyzeRequest,
    type AnalyzeResponse,
    type AnalyzerInfo,
    AnalyzerResource,
    AnalyzerResourceOptions,
    AnalyzeStackRequest,
    ConfigureAnalyzerRequest,
    PolicyConfig,
    EnforcementLevel as WireLevel,
} from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { policies } from "../../policy/policies";
import {
    declaredResources,
    loadPackConfig,
    type PackConfig,
    type PolicyTarget,
    resolvePolicyConfig,
    runPolicies,
    urnOf,
} from "../support/policy";

const LEVELS = {
    advisory: WireLevel.ADVISORY,
    mandatory: WireLevel.MANDATORY,
    disabled: WireLevel.DISABLED,
    remediate: WireLevel.REMEDIATE,
};
const LEVEL_NAMES = new Map(Object.entries(LEVELS).map(([name, level]) => [level, name]));

/** Starts the pack with the SDK's runner, as the CLI's analyzer plugin does; resolves with its gRPC port. */
function startPack(): Promise<{ process: ChildProcess; port: number }> {
    const runner = path.join(PROJECT_ROOT, "node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack");
    // The engine address is only used for logging, which these calls do not reach.
    const child = spawn(process.execPath, [runner, "127.0.0.1:1", "."], { cwd: path.join(PROJECT_ROOT, "policy") });
    return new Promise((resolve, reject) => {
        let stderr = "";
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.stdout.once("data", (chunk) => resolve({ process: child, port: Number(String(chunk).trim()) }));
        child.once("exit", (code) => reject(new Error(`policy pack exited with ${code}: ${stderr}`)));
        // A runner that cannot be spawned at all fails the start, not the whole run as an uncaught error event.
        child.once("error", reject);
    });
}

function unary<Req, Res>(call: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown, request: Req): Promise<Res> {
    return new Promise((resolve, reject) => call(request, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Plain JSON, as the engine marshals properties (no undefined members). */
function struct(value: Record<string, any>): Struct {
    return Struct.fromJavaScript(JSON.parse(JSON.stringify(value)));
}

function resource<T extends AnalyzeRequest | AnalyzerResource>(message: T, target: PolicyTarget, props: Record<string, any>): T {
    message.setType(target.type);
    message.setName(target.name);
    message.setUrn(urnOf(target));
    message.setProperties(struct(props));
    message.setOptions(new AnalyzerResourceOptions());
    return message;
}

describe("the pack served by the Policy SDK's analyzer", () => {
    let pack: { process: ChildProcess; port: number };
    let client: AnalyzerClient;

    beforeAll(async () => {
        pack = await startPack();
        client = new AnalyzerClient(`127.0.0.1:${pack.port}`, grpc.credentials.createInsecure());
    }, 120_000);

    afterAll(() => {
        client?.close();
        pack?.process.kill();
    });

    it("announces the pack, its version and every policy, mandatory unless configured", async () => {
        const info = await unary<Empty, AnalyzerInfo>(client.getAnalyzerInfo.bind(client), new Empty());
        expect([info.getName(), info.getVersion()]).toEqual(["obcms-database", "0.1.0"]);
        expect(info.getPoliciesList().map((p) => [p.getName(), LEVEL_NAMES.get(p.getEnforcementlevel())])).toEqual(
            policies.map((p) => [p.name, "mandatory"]),
        );
    });

    /** Configures the served pack with `config` and runs it over `targets` as a preview would. */
    async function analyze(targets: readonly PolicyTarget[], config: PackConfig) {
        const configure = new ConfigureAnalyzerRequest();
        for (const policy of policies) {
            const { level, values } = resolvePolicyConfig(policy, config);
            const policyConfig = new PolicyConfig();
            policyConfig.setEnforcementlevel(LEVELS[level]);
            policyConfig.setProperties(struct(values));
            configure.getPolicyconfigMap().set(policy.name, policyConfig);
        }
        await unary(client.configure.bind(client), configure);

        // A resource's diagnostics are its own (the engine attaches its URN); a stack's name theirs, if any.
        const responses: Array<[AnalyzeResponse, string | undefined]> = [];
        for (const target of targets) {
            responses.push([await unary(client.analyze.bind(client), resource(new AnalyzeRequest(), target, target.inputs)), target.name]);
        }
        const stack = new AnalyzeStackRequest();
        stack.setResourcesList(targets.map((t) => resource(new AnalyzerResource(), t, t.outputs ?? t.inputs)));
        responses.push([await unary(client.analyzeStack.bind(client), stack), undefined]);

        const names = new Map(targets.map((t) => [urnOf(t), t.name]));
        const descriptions = new Map(policies.map((p) => [p.name, p.description]));
        return responses.flatMap(([r, name]) =>
            r.getDiagnosticsList().map((d) => {
                // The SDK prefixes the policy's description to each message.
                const [description, ...message] = d.getMessage().split("\n");
                expect(description).toBe(descriptions.get(d.getPolicyname()));
                return {
                    policy: d.getPolicyname(),
                    level: LEVEL_NAMES.get(d.getEnforcementlevel()),
                    resource: name ?? names.get(d.getUrn()),
                    message: message.join("\n"),
                };
            }),
        );
    }

    it("reports for a weakened production stack exactly what the adapter reports, with production's levels and thresholds", async () => {
        const targets = await declaredResources("production", { replicaCount: 2, clientTlsSslmode: "prefer", auditLog: "ddl" });
        const config = loadPackConfig("production");
        const served = await analyze(targets, config);
        const adapted = await runPolicies(targets, config);
        const key = (v: { policy: string; resource?: string; message: string }) => `${v.policy} ${v.resource} ${v.message}`;
        expect(served.map(key).sort()).toEqual(adapted.map(key).sort());
        expect(new Set(served.map((v) => v.level))).toEqual(new Set(["mandatory"]));
        expect(new Set(served.map((v) => v.policy))).toEqual(new Set(["client-tls-required", "minimum-replicas", "audit-logging"]));
    });

    it("makes the same findings advisory with staging's config, and passes production with production's", async () => {
        const weakened = await declaredResources("production", { replicaCount: 1 });
        expect(await analyze(weakened, loadPackConfig("staging"))).toEqual([]);
        expect(await analyze(weakened, { ...loadPackConfig("staging"), "minimum-replicas": { minimumReplicas: 3 } })).toEqual([
            {
                policy: "minimum-replicas",
                level: "advisory",
                resource: undefined,
                message: "the stack runs 1 streaming replica(s); at least 3 are required (replicaCount)",
            },
        ]);
        expect(await analyze(await declaredResources("production"), loadPackConfig("production"))).toEqual([]);
    });
});
