// The whole pack over the resources the real program registers, with each
// stack's own policy config: production passes cleanly, staging too (its
// config is advisory and lower), and a weakened production is caught.
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { describe, expect, it } from "vitest";
import { declaredResources, loadPackConfig, type PolicyTarget, runPolicies, stackViolations, type Violation } from "../support/policy";

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
            `${m} client-tls-required pgbouncer-container: PgBouncer client_tls_sslmode = prefer; clients must use at least require (clientTlsSslmode)`,
            `${m} client-tls-required primary-container: ${hostRule}`,
            `${m} client-tls-required replica-1-container: ${hostRule}`,
            `${m} minimum-replicas (stack): the stack runs 1 streaming replica(s); at least 3 are required (replicaCount)`,
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
                `${m} client-tls-required pgbouncer-container: PgBouncer client_tls_sslmode = disable; clients must use at least require (clientTlsSslmode)`,
                ...servers.map(
                    (c) =>
                        `${m} client-tls-required ${c}: pg_hba.conf line N "host all all all scram-sha-256" accepts network logins without TLS (clientTlsSslmode)`,
                ),
            ],
        ],
        [
            "PostgreSQL's ports on every address",
            { publishPostgresPorts: true, publishAddress: "0.0.0.0", grafanaEnabled: false },
            [
                ["pgbouncer-container", 6432, 6442],
                ["primary-container", 5432, 5442],
                ["replica-1-container", 5432, 5443],
                ["replica-2-container", 5432, 5444],
                ["replica-3-container", 5432, 5445],
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
                `${m} no-trust-or-plaintext-auth pgbouncer-container: PgBouncer auth_type = md5 is not an allowed password method; use scram-sha-256 (authMethod)`,
                ...servers.flatMap((c) => [
                    `${m} no-trust-or-plaintext-auth ${c}: pg_hba.conf line N "hostssl replication "replicator" samenet md5" uses md5, not scram-sha-256 (authMethod)`,
                    `${m} no-trust-or-plaintext-auth ${c}: pg_hba.conf line N "hostssl all all all md5" uses md5, not scram-sha-256 (authMethod)`,
                ]),
            ],
        ],
        [
            "no audit log",
            { auditLog: "none" },
            servers.map((c) => `${m} audit-logging ${c}: pgaudit.log = none does not log ddl, role (auditLog)`),
        ],
    ])("%s", async (_, overrides, expected) => {
        expect(lines(await stackViolations("production", overrides))).toEqual(expected);
    });
});

/**
 * What a first `pulumi preview` gives the analyzer: values other resources
 * compute are unknown. Here, the image digest, the volumes' names, the
 * contents of secret (0600) and TLS files, and the generated passwords.
 */
function firstPreview(targets: readonly PolicyTarget[]): PolicyTarget[] {
    return targets.map((t) => {
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
        const violations = await runPolicies(
            firstPreview(await declaredResources("production", { replicaCount: 1 })),
            loadPackConfig("production"),
        );
        const blocked = violations.filter((v) => v.level === "advisory");
        expect(
            blocked.every((v) => /^can't run during preview: string value at \.\S+ can't be known during preview$/.test(v.message)),
        ).toBe(true);
        // The userlist, the bootstrap SQL, pgBackRest's configs and the generated passwords.
        expect([...new Set(blocked.map((v) => v.policy))].sort()).toEqual([
            "backups-encrypted",
            "generated-passwords-not-exposed",
            "monitoring-read-only",
            "no-trust-or-plaintext-auth",
        ]);
        expect(lines(violations.filter((v) => v.level !== "advisory"))).toEqual([
            "mandatory minimum-replicas (stack): the stack runs 1 streaming replica(s); at least 3 are required (replicaCount)",
        ]);
    });
});
