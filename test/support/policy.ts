// Runs the policy pack the way the CrossGuard SDK's analyzer does: resource
// policies on each resource's inputs, stack policies on every resource's
// outputs, both with secrets unwrapped and behind the SDK's unknown-value
// proxy; enforcement levels and settings from a --policy-pack-config file.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import {
    type EnforcementLevel,
    type Policies,
    type PolicyConfigSchema,
    type PolicyResource,
    type ResourceValidationPolicy,
    type StackValidationPolicy,
    UnknownValueError,
    unknownCheckingProxy,
} from "@pulumi/policy";
import * as pulumi from "@pulumi/pulumi";
import { RecordingMocks, revealInputs } from "../../harness/mocks";
import { promiseOf } from "../../harness/outputs";
import { runProgram } from "../../harness/program";
import { PROJECT_ROOT, type StackName } from "../../harness/stack-config";
import { policies as packPolicies } from "../../policy/policies";

/** A resource as the analyzer receives it. */
export interface PolicyTarget {
    readonly type: string;
    readonly name: string;
    /** Inputs, which resource policies see. */
    readonly inputs: Record<string, any>;
    /** Outputs, which stack policies see; the inputs when not given. */
    readonly outputs?: Record<string, any>;
}

export interface Violation {
    readonly policy: string;
    readonly level: EnforcementLevel;
    /** Name of the resource the violation is reported against, if any. */
    readonly resource?: string;
    readonly message: string;
}

/** The JSON a `--policy-pack-config` file holds. */
export type PackConfig = Record<string, EnforcementLevel | ({ enforcementLevel?: EnforcementLevel } & Record<string, unknown>)>;

export function loadPackConfig(stack: StackName): PackConfig {
    return JSON.parse(readFileSync(path.join(PROJECT_ROOT, "policy", "config", `${stack}.json`), "utf8"));
}

/** RecordingMocks that also keep each resource's outputs (its state), as a stack policy reads them after `pulumi up`. */
export class PolicyRecordingMocks extends RecordingMocks {
    readonly outputs: Array<Record<string, any>> = [];

    override newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        const result = super.newResource(args);
        this.outputs.push(revealInputs(result.state));
        return result;
    }

    /** Every custom resource, with its inputs and outputs. */
    targets(): PolicyTarget[] {
        return this.resources.flatMap((r, i) =>
            r.custom ? [{ type: r.type, name: r.name, inputs: r.inputs, outputs: this.outputs[i] }] : [],
        );
    }
}

/**
 * What the CLI makes of a config file for one policy: its enforcement level
 * (its own entry, else `all`, else the level in code) and its settings,
 * checked against its schema as the CLI does before a run.
 */
export function resolvePolicyConfig(
    policy: { name: string; enforcementLevel?: EnforcementLevel; configSchema?: PolicyConfigSchema },
    config: PackConfig,
): { level: EnforcementLevel; values: Record<string, unknown> } {
    for (const name of Object.keys(config)) {
        if (name !== "all" && !packPolicies.some((p) => p.name === name)) {
            throw new Error(`config names policy ${name}, which the pack does not have`);
        }
    }
    const own = config[policy.name];
    if (typeof own === "string") {
        return { level: own, values: {} };
    }
    const level = own?.enforcementLevel ?? (config.all as EnforcementLevel | undefined) ?? policy.enforcementLevel ?? "advisory";
    const { enforcementLevel: _, ...values } = own ?? {};
    for (const [key, value] of Object.entries(values)) {
        const schema = policy.configSchema?.properties[key];
        const type = Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
        if (
            schema === undefined ||
            typeof schema !== "object" ||
            (schema.type !== type && !(schema.type === "number" && type === "integer"))
        ) {
            throw new Error(`policy ${policy.name}: config ${key} = ${JSON.stringify(value)} does not match its schema`);
        }
        if (schema.enum !== undefined && !schema.enum.includes(value as string)) {
            throw new Error(`policy ${policy.name}: config ${key} = ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
        }
    }
    return { level, values };
}

export const urnOf = (t: PolicyTarget) => `urn:pulumi:test::obcms-database::${t.type}::${t.name}`;

/** Runs `policies` (the whole pack by default) over `targets` with a pack config; returns every violation reported. */
export async function runPolicies(
    targets: readonly PolicyTarget[],
    config: PackConfig,
    policies: Policies = packPolicies,
): Promise<Violation[]> {
    const violations: Violation[] = [];
    const opts = {
        protect: false,
        ignoreChanges: [],
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
    };
    // The pack's policies never ask isType/asType or call notApplicable; a call would fail the test.
    const common = {
        stackTags: new Map<string, string>(),
        notApplicable: (reason?: string): never => {
            throw new Error(`not applicable: ${reason}`);
        },
    };
    for (const policy of policies) {
        const { level, values } = resolvePolicyConfig(policy, config);
        if (level === "disabled") {
            continue;
        }
        const getConfig = <T extends object>() => values as T;
        // Like the SDK: a check that reads an unknown value is reported, as advisory, instead of run.
        const run = async (check: () => Promise<void> | void, resource?: string) => {
            try {
                await check();
            } catch (e) {
                if (!(e instanceof UnknownValueError)) {
                    throw e;
                }
                violations.push({
                    policy: policy.name,
                    level: "advisory",
                    resource,
                    message: `can't run during preview: ${(e as Error).message}`,
                });
            }
        };
        if ("validateStack" in policy) {
            const resources: PolicyResource[] = targets.map((t) => ({
                type: t.type,
                name: t.name,
                urn: urnOf(t),
                props: unknownCheckingProxy(t.outputs ?? t.inputs),
                opts,
                dependencies: [],
                propertyDependencies: {},
                isType: () => false,
                asType: () => undefined,
            }));
            const names = new Map(resources.map((r) => [r.urn, r.name]));
            await run(() =>
                (policy as StackValidationPolicy).validateStack({ resources, getConfig, ...common }, (message, resourceUrn) =>
                    violations.push({ policy: policy.name, level, resource: resourceUrn && names.get(resourceUrn), message }),
                ),
            );
            continue;
        }
        const validations = [(policy as ResourceValidationPolicy).validateResource ?? []].flat();
        for (const target of targets) {
            for (const validate of validations) {
                const args = {
                    type: target.type,
                    name: target.name,
                    urn: urnOf(target),
                    props: unknownCheckingProxy(target.inputs),
                    opts,
                    getConfig,
                    isType: () => false,
                    asType: () => undefined,
                    ...common,
                };
                await run(
                    () => validate(args, (message) => violations.push({ policy: policy.name, level, resource: target.name, message })),
                    target.name,
                );
            }
        }
    }
    return violations;
}

/** The custom resources `stack` declares with config `overrides`, as `pulumi preview` would register them. */
export async function declaredResources(stack: StackName, overrides: Record<string, unknown> = {}): Promise<PolicyTarget[]> {
    const mocks = new PolicyRecordingMocks();
    const { exports } = await runProgram({ stack, overrides, mocks });
    // Every output resolves only once all resources are registered.
    await Promise.all(
        Object.values(exports)
            .filter(pulumi.Output.isInstance)
            .map((o) => promiseOf(o as pulumi.Output<unknown>)),
    );
    return mocks.targets();
}

/** Runs the pack over what `stack` declares with `overrides`, with `config` (the stack's own policy config by default). */
export async function stackViolations(
    stack: StackName,
    overrides: Record<string, unknown> = {},
    config: PackConfig = loadPackConfig(stack),
): Promise<Violation[]> {
    return runPolicies(await declaredResources(stack, overrides), config);
}
