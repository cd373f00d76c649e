// The Monitoring component under Pulumi's mocks: what each stack declares for
// observability, that disabling it leaves no trace, and that no credential
// reaches state, an environment or a command line in the clear.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Monitoring } from "../../components/monitoring";
import { isSecretInput, type RecordedResource, RecordingMocks } from "../../harness/mocks";
import { promiseOf } from "../../harness/outputs";
import { runProgram } from "../../harness/program";
import type { StackName } from "../../harness/stack-config";
import { production } from "../render/fixtures";
import { defaultMonitoring } from "../support/monitoring-fixtures";
import { registeredStackOutputs } from "../support/stack-outputs";

/**
 * Runs the program and takes its stack outputs as the engine would record
 * them; then waits for every pending registration, so none of them lands on
 * the next test's mocks.
 */
async function declare(stack: StackName, overrides: Record<string, unknown> = {}) {
    const mocks = new RecordingMocks();
    const { exports } = await runProgram({ stack, overrides, mocks });
    await Promise.all(
        Object.values(exports)
            .filter(pulumi.Output.isInstance)
            .map((o) => promiseOf(o as pulumi.Output<unknown>)),
    );
    const stackOutputs = await registeredStackOutputs(exports);
    await pulumi.runtime.disconnect();
    return { mocks, exports, stackOutputs };
}

function upload(resource: RecordedResource, file: string): { content: string; permissions: string; owner?: string; group?: string } {
    const found = resource.inputs.uploads.filter((u: { file: string }) => u.file === file);
    expect(found, `${resource.name} ${file}`).toHaveLength(1);
    return found[0];
}

/** Every resource of the Monitoring component: the component and its children. */
function monitoringResources(mocks: RecordingMocks): string[] {
    return mocks.resources
        .map((r) => r.name)
        .filter((n) => n === "monitoring" || n.startsWith("monitoring-"))
        .sort();
}

const MONITORING_OUTPUTS = ["grafanaAdminPassword", "grafanaUrl", "prometheusUrl"];

describe.each([
    ["staging", 1, 1, 25, 1000, "127.0.0.1", 9090, 3000],
    ["production", 3, 3, 50, 2000, "127.0.0.1", 9091, 3001],
] as const)("monitoring of the %s stack", (stack, replicas, etcdMembers, poolSize, maxClientConn, address, prometheusPort, grafanaPort) => {
    const cluster = `obcms-database-${stack}`;
    const replicaNames = Array.from({ length: replicas }, (_, i) => `replica-${i + 1}`);
    /** Member names, pg-1 (the `primary` component, which bootstraps) to pg-(1 + replicas). */
    const members = Array.from({ length: replicas + 1 }, (_, i) => `pg-${i + 1}`);
    const etcdNames = Array.from({ length: etcdMembers }, (_, i) => `etcd-${i + 1}`);

    it(`declares an exporter for the primary and each of the ${replicas} replica(s), one for PgBouncer, Prometheus and Grafana`, async () => {
        const { mocks } = await declare(stack);
        expect(mocks.ofType("obcms:monitoring:Monitoring").map((r) => r.name)).toEqual(["monitoring"]);
        expect(monitoringResources(mocks)).toEqual(
            [
                "monitoring",
                "monitoring-grafana",
                "monitoring-grafana-admin-password",
                "monitoring-pgbouncer-exporter",
                "monitoring-primary-exporter",
                "monitoring-prometheus",
                "monitoring-prometheus-data",
                ...replicaNames.map((n) => `monitoring-${n}-exporter`),
            ].sort(),
        );
        const containers = mocks.ofType("docker:index/container:Container").filter((c) => c.name.startsWith("monitoring-"));
        expect(Object.fromEntries(containers.map((c) => [c.name, c.inputs.name]))).toEqual({
            // Containers carry the member's name, which says nothing of its role.
            "monitoring-primary-exporter": `${cluster}-pg-1-exporter`,
            ...Object.fromEntries(replicaNames.map((n, i) => [`monitoring-${n}-exporter`, `${cluster}-pg-${i + 2}-exporter`])),
            "monitoring-pgbouncer-exporter": `${cluster}-pgbouncer-exporter`,
            "monitoring-prometheus": `${cluster}-prometheus`,
            "monitoring-grafana": `${cluster}-grafana`,
        });
        // Only Prometheus and Grafana are published; exporters stay on the cluster network.
        expect(containers.filter((c) => c.inputs.ports.length > 0).map((c) => [c.name, c.inputs.ports])).toEqual([
            ["monitoring-prometheus", [{ internal: 9090, external: prometheusPort, ip: address }]],
            ["monitoring-grafana", [{ internal: 3000, external: grafanaPort, ip: address }]],
        ]);
        expect(mocks.named("monitoring-prometheus-data").inputs.name).toBe(`${cluster}-prometheus-data`);
    });

    it(`scrapes each of the ${replicas + 1} members' exporter and Patroni (over TLS) labelled by member, never by role; PgBouncer's, the router's, the backup container's and each etcd member's`, async () => {
        const { mocks } = await declare(stack);
        const config = parse(upload(mocks.named("monitoring-prometheus"), "/etc/obcms/prometheus.yml").content);
        expect(config.global).toEqual({
            scrape_interval: "15s",
            scrape_timeout: "10s",
            evaluation_interval: "15s",
            external_labels: { cluster },
        });
        expect(config.rule_files).toEqual(["/etc/obcms/alert-rules.yml"]);
        const jobs = Object.fromEntries(config.scrape_configs.map(({ job_name, ...job }: { job_name: string }) => [job_name, job]));
        expect(jobs).toEqual({
            postgres: {
                static_configs: members.map((n) => ({
                    targets: [`${cluster}-${n}-exporter:9187`],
                    labels: { instance: n, role: "postgres" },
                })),
            },
            patroni: {
                scheme: "https",
                tls_config: { ca_file: "/etc/obcms/tls/ca.crt" },
                static_configs: members.map((n) => ({ targets: [`${cluster}-${n}:8008`], labels: { instance: n, role: "patroni" } })),
            },
            pgbouncer: {
                static_configs: [{ targets: [`${cluster}-pgbouncer-exporter:9127`], labels: { instance: "pgbouncer", role: "pgbouncer" } }],
            },
            haproxy: { static_configs: [{ targets: [`${cluster}-pgbouncer:8404`], labels: { instance: "haproxy", role: "haproxy" } }] },
            backup: { static_configs: [{ targets: [`${cluster}-backup:9100`], labels: { instance: "backup", role: "backup" } }] },
            etcd: {
                static_configs: etcdNames.map((n) => ({ targets: [`${cluster}-${n}:2381`], labels: { instance: n, role: "etcd" } })),
            },
        });
        // Prometheus checks each Patroni's certificate against the stack's CA.
        expect(upload(mocks.named("monitoring-prometheus"), "/etc/obcms/tls/ca.crt").content).toBe(
            `-----BEGIN CERTIFICATE-----\n${Buffer.from("tls-ca").toString("base64")}\n-----END CERTIFICATE-----\n`,
        );
    });

    it(`sets the pool and client thresholds from the stack's sizes (pool ${poolSize}, ${maxClientConn} clients)`, async () => {
        const { mocks } = await declare(stack);
        const rules = parse(upload(mocks.named("monitoring-prometheus"), "/etc/obcms/alert-rules.yml").content).groups[0].rules;
        const expr = (name: string) => rules.find((r: { alert: string }) => r.alert === name).expr as string;
        expect(expr("PgBouncerPoolSaturated")).toMatch(new RegExp(` >= ${(poolSize * 90) / 100}$`));
        expect(expr("PgBouncerClientConnectionsNearLimit")).toMatch(new RegExp(` >= ${(maxClientConn * 80) / 100}$`));
        expect(expr("PostgreSQLConnectionsNearLimit")).toMatch(/ >= 80$/);
        expect(expr("PostgreSQLReplicationSlotWalNearLimit")).toMatch(new RegExp(` >= ${Math.round(2048 * 1024 * 1024 * 0.8)}$`));
    });

    it("gives the exporters the monitoring password only in a 0600 passfile, a secret in state, and verifies TLS", async () => {
        const { mocks } = await declare(stack);
        const password = "credentials-monitoring-password-value-".padEnd(32, "x").slice(0, 32);
        const exporters = mocks.ofType("docker:index/container:Container").filter((c) => /^monitoring-.*-exporter$/.test(c.name));
        expect(exporters).toHaveLength(replicas + 2);
        for (const exporter of exporters) {
            const passfile = exporter.rawInputs.uploads;
            expect(isSecretInput(passfile), exporter.name).toBe(true);
            const pgpass = upload(exporter, "/etc/obcms/pgpass");
            expect([pgpass.permissions, pgpass.owner, pgpass.group]).toEqual(["0600", "999", "999"]);
            expect(pgpass.content).toMatch(
                new RegExp(`^${cluster}-(pg-\\d+|pgbouncer):(5432:obcms|6432:pgbouncer):monitoring:${password}\n$`),
            );
            const start = upload(exporter, "/etc/obcms/start.sh").content;
            expect(start).toContain("\nexport PGPASSFILE='/etc/obcms/pgpass'\n");
            // The login: no password, TLS verified against the stack's CA and the server's name.
            const tls = "sslmode=verify-full&sslrootcert=/etc/obcms/tls/ca.crt";
            if (exporter.name === "monitoring-pgbouncer-exporter") {
                expect(start).toContain(
                    ` prometheus-pgbouncer-exporter --pgBouncer.connectionString='postgresql://monitoring@${cluster}-pgbouncer:6432/pgbouncer?${tls}' `,
                );
            } else {
                // Each exporter logs in to its own member: the container its name is derived from.
                const member = (exporter.inputs.name as string).replace(/-exporter$/, "");
                expect(start).toContain(
                    `\nexport DATA_SOURCE_NAME='postgresql://monitoring@${member}:5432/obcms?application_name=postgres_exporter&${tls}'\n`,
                );
            }
            expect(upload(exporter, "/etc/obcms/tls/ca.crt")).toEqual({
                file: "/etc/obcms/tls/ca.crt",
                content: `-----BEGIN CERTIFICATE-----\n${Buffer.from("tls-ca").toString("base64")}\n-----END CERTIFICATE-----\n`,
                permissions: "0644",
                owner: "999",
                group: "999",
            });
            const everythingButThePassfile = JSON.stringify({
                ...exporter.inputs,
                uploads: exporter.inputs.uploads.filter((u: { file: string }) => u.file !== "/etc/obcms/pgpass"),
            });
            expect(everythingButThePassfile, exporter.name).not.toContain(password);
        }
    });
});

describe("TLS for the exporters", () => {
    it("asks PgBouncer for no TLS when it offers none, and still verifies PostgreSQL, which always offers it", async () => {
        const { mocks } = await declare("staging", { clientTlsSslmode: "disable" });
        expect(upload(mocks.named("monitoring-pgbouncer-exporter"), "/etc/obcms/start.sh").content).toContain(
            " --pgBouncer.connectionString='postgresql://monitoring@obcms-database-staging-pgbouncer:6432/pgbouncer?sslmode=disable' ",
        );
        expect(upload(mocks.named("monitoring-primary-exporter"), "/etc/obcms/start.sh").content).toContain(
            "?application_name=postgres_exporter&sslmode=verify-full&sslrootcert=/etc/obcms/tls/ca.crt'\n",
        );
    });
});

describe("turning monitoring off", () => {
    it("removes every monitoring resource and output and changes nothing else", async () => {
        const enabled = await declare("production");
        const disabled = await declare("production", { monitoringEnabled: false });
        expect(monitoringResources(disabled.mocks)).toEqual([]);
        expect(disabled.mocks.ofType("obcms:monitoring:Monitoring")).toEqual([]);
        const inputs = (m: RecordingMocks) => new Map(m.resources.map((r) => [r.name, JSON.stringify(r.inputs)]));
        const before = inputs(enabled.mocks);
        const after = inputs(disabled.mocks);
        expect([...before.keys()].filter((n) => !after.has(n)).sort()).toEqual(monitoringResources(enabled.mocks));
        expect([...after].filter(([name, value]) => before.get(name) !== value)).toEqual([]);

        const withMonitoring = enabled.stackOutputs;
        const without = disabled.stackOutputs;
        expect(MONITORING_OUTPUTS.filter((k) => k in withMonitoring)).toEqual(MONITORING_OUTPUTS);
        expect(MONITORING_OUTPUTS.filter((k) => k in without)).toEqual([]);
        expect(Object.keys(without).sort()).toEqual(
            Object.keys(withMonitoring)
                .filter((k) => !MONITORING_OUTPUTS.includes(k))
                .sort(),
        );
    });

    it("can leave out only Grafana, keeping the exporters and Prometheus", async () => {
        const { mocks, exports, stackOutputs } = await declare("staging", { grafanaEnabled: false });
        expect(monitoringResources(mocks)).toEqual([
            "monitoring",
            "monitoring-pgbouncer-exporter",
            "monitoring-primary-exporter",
            "monitoring-prometheus",
            "monitoring-prometheus-data",
            "monitoring-replica-1-exporter",
        ]);
        expect(MONITORING_OUTPUTS.filter((k) => k in stackOutputs)).toEqual(["prometheusUrl"]);
        expect(await promiseOf(exports.prometheusUrl as pulumi.Output<string>)).toBe("http://127.0.0.1:9090");
    });
});

describe("Grafana", () => {
    it("gets a generated admin password that is a secret output and reaches Grafana only as a 0640 file", async () => {
        const { mocks, exports } = await declare("staging");
        const generated = mocks.named("monitoring-grafana-admin-password");
        expect(generated.type).toBe("random:index/randomPassword:RandomPassword");
        expect(generated.inputs).toEqual({ length: 32, special: false });
        const password = "monitoring-grafana-admin-password-value-".slice(0, 32);

        const output = exports.grafanaAdminPassword as pulumi.Output<string>;
        expect(await pulumi.isSecret(output)).toBe(true);
        expect(await promiseOf(output)).toBe(password);
        expect(await promiseOf(exports.grafanaUrl as pulumi.Output<string>)).toBe("http://127.0.0.1:3000");

        const grafana = mocks.named("monitoring-grafana");
        expect(isSecretInput(grafana.rawInputs.uploads)).toBe(true);
        expect(upload(grafana, "/etc/obcms/grafana/admin-password")).toEqual({
            file: "/etc/obcms/grafana/admin-password",
            content: password,
            permissions: "0640",
        });
        // Group 0 may read the 0640 root-owned file; Grafana's image runs as uid 472 in it.
        expect(grafana.inputs.user).toBe("472:0");
        expect(grafana.inputs.image).toBe("grafana/grafana-oss:12.0.0");
        expect(grafana.inputs.envs).toContain("GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/obcms/grafana/admin-password");
        const { uploads, ...rest } = grafana.inputs;
        expect(JSON.stringify(rest)).not.toContain(password);
        expect(uploads.map((u: { file: string }) => u.file).sort()).toEqual([
            "/etc/grafana/provisioning/dashboards/obcms.yaml",
            "/etc/grafana/provisioning/datasources/obcms.yaml",
            "/etc/obcms/grafana/admin-password",
            "/etc/obcms/grafana/dashboards/obcms-backup.json",
            "/etc/obcms/grafana/dashboards/obcms-cluster.json",
            "/etc/obcms/grafana/dashboards/obcms-pgbouncer.json",
            "/etc/obcms/grafana/dashboards/obcms-postgresql.json",
        ]);
        expect(parse(upload(grafana, "/etc/grafana/provisioning/datasources/obcms.yaml").content).datasources[0].url).toBe(
            "http://obcms-database-staging-prometheus:9090",
        );
    });

    it("runs the configured image", async () => {
        const { mocks } = await declare("staging", { grafanaImage: "registry.example/grafana:11.6.1" });
        expect(mocks.named("monitoring-grafana").inputs.image).toBe("registry.example/grafana:11.6.1");
    });
});

/** Custom resources of the Monitoring component whose inputs differ between two declarations. */
function changedMonitoring(before: RecordingMocks, after: RecordingMocks): string[] {
    const all = [...before.resources, ...after.resources].filter((r) => r.custom && r.name.startsWith("monitoring-"));
    const inputs = (m: RecordingMocks, name: string) => JSON.stringify(m.resources.find((r) => r.name === name)?.inputs);
    return [...new Set(all.map((r) => r.name))].filter((name) => inputs(before, name) !== inputs(after, name)).sort();
}

describe("what a config change does to monitoring", () => {
    it.each([
        ["replicaCount", 2, ["monitoring-prometheus", "monitoring-replica-2-exporter"]],
        ["alertForSeconds", 300, ["monitoring-prometheus"]],
        ["replicationLagAlertSeconds", 60, ["monitoring-grafana", "monitoring-prometheus"]],
        ["maximumLagOnFailoverMb", 8, ["monitoring-grafana", "monitoring-prometheus"]],
        ["defaultPoolSize", 40, ["monitoring-grafana", "monitoring-prometheus"]],
        ["queryWaitTimeout", 60, []],
        ["prometheusRetention", "30d", ["monitoring-prometheus"]],
        ["scrapeIntervalSeconds", 30, ["monitoring-grafana", "monitoring-prometheus"]],
        ["grafanaPort", 3300, ["monitoring-grafana"]],
        ["restoreDrillEvery", "2w", ["monitoring-grafana", "monitoring-prometheus"]],
    ] as const)("changing %s re-renders only %j", async (key, value, changed) => {
        const before = await declare("staging");
        const after = await declare("staging", { [key]: value });
        expect(changedMonitoring(before.mocks, after.mocks)).toEqual(changed);
    });
});

describe("the Monitoring component", () => {
    it("refuses a replica list that does not match the settings", async () => {
        await pulumi.runtime.setMocks(new RecordingMocks(), "obcms-database", "production", false);
        const node = (name: string) => new pulumi.ComponentResource("test:index:Node", name);
        const secret = pulumi.secret("monitoring-password-0123456789");
        expect(
            () =>
                new Monitoring("monitoring", {
                    settings: production,
                    monitoring: defaultMonitoring,
                    image: "obcms-database:17",
                    network: "net",
                    credential: { user: "monitoring", password: secret, verifier: secret },
                    caCertPem: "ca",
                    primary: node("primary"),
                    replicas: [node("replica-1")],
                    pgbouncer: node("pgbouncer"),
                    backupSettings: {
                        fullEverySeconds: 604_800,
                        diffEverySeconds: 86_400,
                        retentionFull: 2,
                        restoreDrillEverySeconds: 604_800,
                        repository: { type: "volume" },
                    },
                    backup: node("backup"),
                    etcd: node("etcd"),
                }),
        ).toThrow("Monitoring needs an exporter target for each of the 3 replicas the settings declare, got 1 replica resources");
        await pulumi.runtime.disconnect();
    });
});
