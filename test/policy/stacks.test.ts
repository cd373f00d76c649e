// The whole pack over the resources the real program registers, with each
// stack's own policy config: production passes cleanly, staging too (its
// config is advisory and lower), and a weakened production is caught.
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { declaredResources, loadPackConfig, type PolicyTarget, runPolicies, stackViolations, type Violation } from "../support/policy";

/** What synchronous-replication says of the commands that write an asynchronous dynamic configuration into etcd (synchronousReplicas 0). */
const ASYNCHRONOUS_WRITERS = [
    "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put)",
    "cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config)",
].map(
    (writer) =>
        `${writer}: synchronous_mode = false: a commit is acknowledged before any replica has it, so a failover can lose it; at least 1 replica(s) must confirm each commit (synchronousReplicas)`,
);

/**
 * Violations as `level policy resource: message` lines. pg_hba.conf line
 * numbers become N: the rule's text is asserted, and a rule another feature
 * adds above it must not break these tests (policies.test.ts checks numbers).
 */
function lines(violations: readonly Violation[]): string[] {
    return violations.map((v) => {
        const message = v.message.replace(/^pg_hba\.conf line \d+ /, "pg_hba.conf line N ");
        return `${v.level} ${v.policy} ${v.resource ?? "(stack)"}: ${message}`;
    });
}

describe("the policy pack over the program's resources", () => {
    it.each(["production", "staging"] as const)("%s passes its own policy config without a violation", async (stack) => {
        expect(lines(await stackViolations(stack))).toEqual([]);
    });

    it("staging's resources break production's rules where the two configs differ", async () => {
        const m = "mandatory";
        const hostRule = 'pg_hba.conf line N "host all all all scram-sha-256" accepts network logins without TLS (clientTlsSslmode)';
        expect(lines(await stackViolations("staging", {}, loadPackConfig("production")))).toEqual([
            `${m} client-tls-required primary-container: ${hostRule}`,
            `${m} client-tls-required replica-1-container: ${hostRule}`,
            `${m} client-tls-required pgbouncer-container: PgBouncer client_tls_sslmode = prefer; clients must use at least require (clientTlsSslmode)`,
            `${m} minimum-replicas (stack): the stack runs 1 streaming replica(s); at least 3 are required (replicaCount)`,
            ...ASYNCHRONOUS_WRITERS.map((w) => `${m} synchronous-replication ${w}`),
            `${m} dcs-quorum (stack): the stack runs 1 etcd member(s); at least 3 are required (etcdMembers)`,
        ]);
    });
});

describe("a weakened production stack is caught, with a message naming the config key", () => {
    const m = "mandatory";
    const servers = ["primary-container", "replica-1-container", "replica-2-container", "replica-3-container"];

    it.each<[string, Record<string, unknown>, string[]]>([
        [
            "one replica",
            { replicaCount: 1 },
            [`${m} minimum-replicas (stack): the stack runs 1 streaming replica(s); at least 3 are required (replicaCount)`],
        ],
        [
            "one etcd member",
            { etcdMembers: 1 },
            [`${m} dcs-quorum (stack): the stack runs 1 etcd member(s); at least 3 are required (etcdMembers)`],
        ],
        [
            "no monitoring",
            { monitoringEnabled: false },
            [
                `${m} monitoring-enabled (stack): no container runs Prometheus (none carries a prometheus.yml): nothing watches the cluster or raises an alert (monitoringEnabled)`,
            ],
        ],
        [
            "TLS optional for clients",
            { clientTlsSslmode: "disable" },
            [
                ...servers.map(
                    (c) =>
                        `${m} client-tls-required ${c}: pg_hba.conf line N "host all all all scram-sha-256" accepts network logins without TLS (clientTlsSslmode)`,
                ),
                `${m} client-tls-required pgbouncer-container: PgBouncer client_tls_sslmode = disable; clients must use at least require (clientTlsSslmode)`,
            ],
        ],
        [
            "PostgreSQL's ports on every address",
            { publishPostgresPorts: true, publishAddress: "0.0.0.0", grafanaEnabled: false },
            [
                ["primary-container", 5432, 5442],
                ["replica-1-container", 5432, 5443],
                ["replica-2-container", 5432, 5444],
                ["replica-3-container", 5432, 5445],
                ["pgbouncer-container", 6432, 6442],
                ["monitoring-prometheus", 9090, 9091],
            ].map(
                ([c, internal, external]) =>
                    `${m} no-public-ports ${c}: publishes port ${internal} as host port ${external} on 0.0.0.0, every address of the host; publish it on an address in 127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (publishAddress)`,
            ),
        ],
        [
            "md5 passwords",
            { authMethod: "md5" },
            [
                ...servers.flatMap((c) => [
                    `${m} no-trust-or-plaintext-auth ${c}: pg_hba.conf line N "hostssl replication "replicator" samenet md5" uses md5, not scram-sha-256 (authMethod)`,
                    `${m} no-trust-or-plaintext-auth ${c}: pg_hba.conf line N "hostssl all all all md5" uses md5, not scram-sha-256 (authMethod)`,
                ]),
                `${m} no-trust-or-plaintext-auth pgbouncer-container: PgBouncer auth_type = md5 is not an allowed password method; use scram-sha-256 (authMethod)`,
            ],
        ],
        [
            "no audit log",
            { auditLog: "none" },
            [
                `${m} audit-logging etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put) sets pgaudit.log = none, which does not log ddl, role (auditLog)`,
                `${m} audit-logging cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config) sets pgaudit.log = none, which does not log ddl, role (auditLog)`,
            ],
        ],
        ["no synchronous replica", { synchronousReplicas: 0 }, ASYNCHRONOUS_WRITERS.map((w) => `${m} synchronous-replication ${w}`)],
    ])("%s", async (_, overrides, expected) => {
        expect(lines(await stackViolations("production", overrides))).toEqual(expected);
    });
});

/** `targets` with the patroni.yml of container `name` edited, as a change to the program would leave it. */
function withPatroniConf(targets: readonly PolicyTarget[], name: string, edit: (text: string) => string): PolicyTarget[] {
    return targets.map((t) => {
        if (t.name !== name) {
            return t;
        }
        const uploads = t.inputs.uploads.map((u: { file: string; content: string }) =>
            u.file === "/etc/obcms/patroni.yml" ? { ...u, content: edit(u.content) } : u,
        );
        return { ...t, inputs: { ...t.inputs, uploads }, outputs: { ...t.outputs, uploads } };
    });
}

/** An edit of patroni.yml's settings. */
const editing =
    (edit: (conf: Record<string, any>) => void) =>
    (text: string): string => {
        const conf = parse(text);
        edit(conf);
        return stringify(conf);
    };

describe("a production stack weakened where no config key reaches is caught", () => {
    it.each<[string, string, (conf: Record<string, any>) => void, string]>([
        [
            "a REST API without authentication",
            "primary-container",
            (conf) => delete conf.restapi.authentication,
            "patroni-api-authenticated primary-container: patroni.yml: restapi has no authentication (username and password): anyone who reaches port 8008 could switch the leader over, restart or reinitialize a member, or change the cluster's configuration",
        ],
        [
            "Patroni reaching etcd over http",
            "replica-2-container",
            (conf) => delete conf.etcd3.protocol,
            "dcs-tls replica-2-container: patroni.yml: etcd3 reaches etcd over http, not https: who leads would be decided in clear text",
        ],
    ])("%s", async (_, container, edit, expected) => {
        const targets = withPatroniConf(await declaredResources("production"), container, editing(edit));
        expect(lines(await runPolicies(targets, loadPackConfig("production")))).toEqual([`mandatory ${expected}`]);
    });
});

describe("the passwords patroni.yml holds", () => {
    it("reach no message, even from a patroni.yml that does not parse", async () => {
        const declared = await declaredResources("production", { synchronousReplicas: 0, auditLog: "none", clientTlsSslmode: "disable" });
        const passwords = declared
            .filter((t) => t.type === "random:index/randomPassword:RandomPassword")
            .map((t) => t.outputs?.result as string);
        const patroniYml = (targets: readonly PolicyTarget[], name: string): string =>
            targets.find((t) => t.name === name)?.inputs.uploads.find((u: { file: string }) => u.file === "/etc/obcms/patroni.yml").content;
        // The check can fail: patroni.yml holds four of the generated passwords.
        expect(passwords.filter((p) => patroniYml(declared, "replica-1-container").includes(p))).toHaveLength(4);
        const broken = withPatroniConf(
            withPatroniConf(declared, "primary-container", (text) => text.replace(/password: "([^"]+)"/, "password: [$1")),
            "replica-1-container",
            editing((conf) => delete conf.restapi.authentication),
        );
        const text = patroniYml(broken, "primary-container");
        const brokenLine = text.slice(0, text.indexOf("password: [")).split("\n").length;
        const messages = (await runPolicies(broken, loadPackConfig("production"))).map((v) => v.message);
        expect(messages).toContain(
            `patroni.yml is not valid YAML (line ${brokenLine + 1}): Patroni cannot start, and this check cannot run`,
        );
        expect(messages.filter((m) => passwords.some((p) => m.includes(p)))).toEqual([]);
    });
});

/**
 * What a first `pulumi preview` gives the analyzer: values other resources
 * compute are unknown. Here, the image digest, the volumes' names, the
 * contents of secret (0600) and TLS files (patroni.yml among them), the SQL
 * piped to the leader (it holds verifiers), and the generated passwords.
 */
function firstPreview(targets: readonly PolicyTarget[]): PolicyTarget[] {
    return targets.map((t) => {
        if (t.name === "cluster-config-roles") {
            const inputs = { ...t.inputs, stdin: unknownValue };
            return { ...t, inputs, outputs: inputs };
        }
        if (t.type !== "docker:index/container:Container") {
            return t.outputs && "result" in t.outputs ? { ...t, outputs: { ...t.outputs, result: unknownValue } } : t;
        }
        const uploads = t.inputs.uploads.map((u: { file: string; permissions: string }) =>
            u.permissions === "0600" || u.file.includes("/tls/") ? { ...u, content: unknownValue } : u,
        );
        const volumes = (t.inputs.volumes ?? []).map((v: Record<string, unknown>) => ({ ...v, volumeName: unknownValue }));
        const inputs = { ...t.inputs, image: unknownValue, uploads, volumes };
        return { ...t, inputs, outputs: inputs };
    });
}

describe("at the first preview", () => {
    it("every check that reads no generated value runs; the others say they could not, as advisories", async () => {
        const weakened = { replicaCount: 1, clientTlsSslmode: "prefer", synchronousReplicas: 0 };
        const violations = await runPolicies(firstPreview(await declaredResources("production", weakened)), loadPackConfig("production"));
        const blocked = violations.filter((v) => v.level === "advisory");
        expect(
            blocked.every((v) => /^can't run during preview: string value at \.\S+ can't be known during preview$/.test(v.message)),
        ).toBe(true);
        // patroni.yml (it holds passwords), the userlist, the roles' SQL, pgBackRest's configs and the generated passwords.
        expect([...new Set(blocked.map((v) => v.policy))].sort()).toEqual([
            "audit-logging",
            "backups-encrypted",
            "client-tls-required",
            "credential-files-private",
            "data-on-named-volumes",
            "dcs-tls",
            "generated-passwords-not-exposed",
            "monitoring-enabled",
            "monitoring-read-only",
            "no-trust-or-plaintext-auth",
            "patroni-api-authenticated",
            "replication-restricted",
            "slot-wal-bounded",
            "synchronous-replication",
        ]);
        // What reads no patroni.yml still runs: PgBouncer's TLS, the member count, the dynamic configuration the stack applies.
        expect(lines(violations.filter((v) => v.level !== "advisory"))).toEqual([
            "mandatory client-tls-required pgbouncer-container: PgBouncer client_tls_sslmode = prefer; clients must use at least require (clientTlsSslmode)",
            "mandatory minimum-replicas (stack): the stack runs 1 streaming replica(s); at least 3 are required (replicaCount)",
            ...ASYNCHRONOUS_WRITERS.map((w) => `mandatory synchronous-replication ${w}`),
        ]);
    });
});
