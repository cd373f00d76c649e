// The example app stack (examples/app) under mocks, its StackReference
// answered with the outputs of the real database program for staging.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { isSecretInput, type RecordedResource, RecordingMocks } from "../../harness/mocks";
import { promiseOf, resolveAll } from "../../harness/outputs";
import { runProgram } from "../../harness/program";
import { PROJECT_ROOT } from "../../harness/stack-config";
import { runAppProgram } from "../support/app-program";
import { type ReferencedStack, StackReferenceMocks, secretOutputNames } from "../support/stack-reference";

const DATABASE_STACK = "acme/obcms-database/staging";
const SECRETS_DIR = "/run/secrets/obcms";

let database: ReferencedStack;

beforeAll(async () => {
    const { exports } = await runProgram({ stack: "staging", mocks: new RecordingMocks() });
    database = { outputs: await resolveAll(exports), secretOutputNames: await secretOutputNames(exports) };
    await pulumi.runtime.disconnect();
});

async function declareApp(config: Record<string, string | number> = { databaseStack: DATABASE_STACK }) {
    const recorded = new RecordingMocks();
    const mocks = new StackReferenceMocks(recorded, { [DATABASE_STACK]: database });
    const exports = await runAppProgram({ stack: "staging", config, mocks });
    const url = await promiseOf(exports.url as pulumi.Output<string>);
    await pulumi.runtime.disconnect();
    return { recorded, url };
}

describe("database stack outputs for app containers", () => {
    it("exports the cluster network and, as secrets, URLs that name PgBouncer's container on it", () => {
        const { outputs, secretOutputNames: secrets } = database;
        expect(outputs.networkName).toBe("obcms-database-staging-net");
        for (const [network, published] of [
            ["networkDatabaseUrl", "databaseUrl"],
            ["networkReadonlyDatabaseUrl", "readonlyDatabaseUrl"],
        ]) {
            expect(secrets).toContain(network);
            const expected = new URL(outputs[published] as string);
            expected.host = "obcms-database-staging-pgbouncer:6432";
            expect(outputs[network], network).toBe(expected.toString());
        }
        expect(secrets).not.toContain("networkName");
    });
});

describe("example app stack", () => {
    let recorded: RecordingMocks;
    let url: string;
    let web: RecordedResource;

    beforeAll(async () => {
        ({ recorded, url } = await declareApp());
        web = recorded.named("web");
    });

    it("declares the image built from examples/app/django, a secret key and one container", () => {
        expect(recorded.resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
            "docker:index/container:Container web",
            "docker:index/image:Image image",
            "random:index/randomPassword:RandomPassword secret-key",
        ]);
        expect(recorded.named("image").inputs.build).toEqual({
            context: "django",
            dockerfile: "django/Dockerfile",
            platform: "linux/amd64",
        });
        expect(url).toBe("http://127.0.0.1:8000");
    });

    it("joins the database stack's network as a non-root user, published on 127.0.0.1 only", () => {
        expect(web.inputs).toMatchObject({
            name: "obcms-app-staging-web",
            image: `sha256:${"0".repeat(64)}`,
            user: "10001:10001",
            networksAdvanced: [{ name: "obcms-database-staging-net" }],
            ports: [{ internal: 8000, external: 8000, ip: "127.0.0.1" }],
            wait: true,
        });
    });

    it("gets the URLs as secret files owned by the app, 0600, and only their paths in the environment", async () => {
        expect(isSecretInput(web.rawInputs.uploads)).toBe(true);
        const { outputs } = database;
        const secretKey = recorded.named("secret-key");
        const file = (name: string, content: unknown, permissions: string) => ({
            file: `${SECRETS_DIR}/${name}`,
            content,
            permissions,
            owner: "10001",
            group: "10001",
        });
        expect(web.inputs.uploads).toEqual([
            file("database-url", outputs.networkDatabaseUrl, "0600"),
            file("readonly-database-url", outputs.networkReadonlyDatabaseUrl, "0600"),
            file("secret-key", `secret-key-value-`.padEnd(secretKey.inputs.length, "x"), "0600"),
            file("ca.crt", outputs.caCertificate, "0644"),
        ]);
        expect(web.inputs.envs).toEqual([
            `DATABASE_URL_FILE=${SECRETS_DIR}/database-url`,
            `READONLY_DATABASE_URL_FILE=${SECRETS_DIR}/readonly-database-url`,
            `SECRET_KEY_FILE=${SECRETS_DIR}/secret-key`,
            `DATABASE_CA_FILE=${SECRETS_DIR}/ca.crt`,
        ]);
        const password = decodeURIComponent(new URL(outputs.networkDatabaseUrl as string).password);
        expect(password.length).toBeGreaterThanOrEqual(32);
        const { uploads, ...rest } = web.inputs;
        expect(uploads).toBeDefined();
        expect(JSON.stringify(rest)).not.toContain(password);
        expect(rest.command ?? [], "command").toEqual([]);
        expect(rest.labels ?? [], "labels").toEqual([]);
    });

    it("refuses a database stack that is not fully qualified, naming the key", async () => {
        await expect(declareApp({ databaseStack: "staging" })).rejects.toThrow(
            "Configuration 'obcms-app:databaseStack' value 'staging' does not match the regular expression",
        );
    });
});

describe("README", () => {
    it("quotes the example app's files verbatim", () => {
        const readme = readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");
        const section = readme.slice(readme.indexOf("## Outputs, and how an app consumes them"), readme.indexOf("## What a change does"));
        // A block names its file in its first line; "// ..." or "# ..." lines separate excerpts.
        const blocks = [...section.matchAll(/```(?:ts|python)\n(?:\/\/|#) (examples\/\S+)\n([\s\S]*?)```/g)];
        expect(blocks.map(([, file]) => file)).toEqual([
            "examples/app/index.ts",
            "examples/app/django/obcms_app/settings.py",
            "examples/app/django/obcms_app/db_router.py",
        ]);
        for (const [, file, body] of blocks) {
            const source = readFileSync(path.join(PROJECT_ROOT, file), "utf8");
            for (const excerpt of body.split(/^(?:\/\/|#) \.\.\.\n/m)) {
                expect(source, file).toContain(excerpt);
            }
        }
    });
});
