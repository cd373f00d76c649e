// The program under Pulumi's mocks: what each stack declares, which outputs
// are secret, and what a reviewer's preview would show for a config change.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { credentialsInputUserlist } from "../../components/render/pgbouncer/credentials-command";
import { isSecretInput, mockPem, type RecordedResource, RecordingMocks } from "../../harness/mocks";
import { promiseOf } from "../../harness/outputs";
import { plan } from "../../harness/preview";
import { runProgram } from "../../harness/program";
import type { StackName } from "../../harness/stack-config";

const DATABASE_CONTAINER = /^(primary|replica-\d+|pgbouncer|backup)-container$/;

/** Runs the program under the recording mocks. */
async function declare(stack: StackName, overrides: Record<string, unknown> = {}, secretKeys: string[] = []) {
    const mocks = new RecordingMocks();
    const importProgram = async () => {
        vi.resetModules();
        return (await import("../../index")) as Record<string, unknown>;
    };
    const { exports } = await runProgram({ stack, overrides, secretKeys, mocks, importProgram });
    // Every output resolves only once all resources are registered.
    await Promise.all(
        Object.values(exports)
            .filter(pulumi.Output.isInstance)
            .map((o) => promiseOf(o as pulumi.Output<unknown>)),
    );
    return { mocks, exports };
}

/** The password the mocks generate for a RandomPassword (harness/mocks.ts: its name and "-value-", cut to its length). */
function mockPassword(password: RecordedResource): string {
    return `${password.name}-value-`.padEnd(password.inputs.length, "x").slice(0, password.inputs.length);
}

function upload(resource: RecordedResource, file: string): string {
    const found = resource.inputs.uploads.filter((u: { file: string }) => u.file === file);
    expect(found).toHaveLength(1);
    return found[0].content;
}

/** The PostgreSQL parameters of the dynamic configuration the stack applies on the leader. */
function appliedParameters(mocks: RecordingMocks): Record<string, unknown> {
    return parse(mocks.named("cluster-config-dynamic-config").inputs.stdin).postgresql.parameters;
}

describe.each([
    ["staging", 1, 25, 1000, 1],
    ["production", 3, 50, 2000, 3],
] as const)("the %s stack", (stack, replicas, poolSize, maxClientConn, etcdMembers) => {
    it(`declares ${replicas + 1} members (the first bootstraps), the commands that configure the cluster, and PgBouncer`, async () => {
        const { mocks } = await declare(stack);
        const replicaNames = Array.from({ length: replicas }, (_, i) => `replica-${i + 1}`);
        expect(mocks.ofType("obcms:database:Primary").map((r) => r.name)).toEqual(["primary"]);
        expect(
            mocks
                .ofType("obcms:database:Replica")
                .map((r) => r.name)
                .sort(),
        ).toEqual(replicaNames);
        expect(mocks.ofType("obcms:database:ClusterConfig").map((r) => r.name)).toEqual(["cluster-config"]);
        expect(mocks.ofType("obcms:database:PgBouncer").map((r) => r.name)).toEqual(["pgbouncer"]);
        expect(
            mocks
                .ofType("docker:index/container:Container")
                .filter((r) => DATABASE_CONTAINER.test(r.name))
                .map((r) => [r.name, r.inputs.name])
                .sort(),
        ).toEqual(
            [
                ["backup-container", `obcms-database-${stack}-backup`],
                ["pgbouncer-container", `obcms-database-${stack}-pgbouncer`],
                ["primary-container", `obcms-database-${stack}-pg-1`],
                ...replicaNames.map((n, i) => [`${n}-container`, `obcms-database-${stack}-pg-${i + 2}`]),
            ].sort(),
        );
        expect(
            mocks
                .ofType("command:local:Command")
                .map((r) => r.name)
                .sort(),
        ).toEqual([
            "backup-certificate",
            "backup-last-label",
            "cluster-config-dynamic-config",
            "cluster-config-leader-placement",
            "cluster-config-roles",
            ...Array.from({ length: etcdMembers }, (_, i) => `etcd-${i + 1}-certificate`),
            "etcd-patroni-config-seed",
            "pgbouncer-certificate-reload",
            "pgbouncer-credentials-reload",
            "pgbouncer-settings-reload",
            "primary-certificate",
            "primary-handover",
            ...replicaNames.flatMap((n) => [`${n}-certificate`, `${n}-handover`]),
        ]);
        expect(
            mocks
                .ofType("docker:index/volume:Volume")
                .map((r) => r.inputs.name)
                .filter((n) => /-pg-\d+-data$/.test(n))
                .sort(),
        ).toEqual(Array.from({ length: replicas + 1 }, (_, i) => `obcms-database-${stack}-pg-${i + 1}-data`).sort());
    });

    it(`renders pool ${poolSize} and ${maxClientConn} clients in transaction mode, the sizes and client limit in the file PgBouncer reloads`, async () => {
        const { mocks, exports } = await declare(stack);
        const settingsOf = (text: string) =>
            Object.fromEntries(
                text
                    .split("\n")
                    .filter((line) => / = /.test(line))
                    .map((line) => line.split(" = ")),
            );
        const ini = upload(mocks.named("pgbouncer-container"), "/etc/obcms/pgbouncer.ini");
        expect(ini).toContain("\n[pgbouncer]\n%include /var/lib/obcms/pgbouncer/pool.ini\n");
        expect(settingsOf(ini)).toMatchObject({ pool_mode: "transaction" });
        expect(settingsOf(ini)).not.toHaveProperty("max_client_conn");
        const reload = mocks.named("pgbouncer-settings-reload");
        expect(settingsOf(reload.inputs.stdin)).toEqual({
            default_pool_size: String(poolSize),
            max_client_conn: String(maxClientConn),
            reserve_pool_size: "5",
            query_wait_timeout: "120",
            max_db_connections: String(poolSize + 5),
        });
        // The container reads the file from the volume the command writes to, and is created after it.
        expect(mocks.named("pgbouncer-container").inputs.volumes).toEqual([
            { volumeName: `obcms-database-${stack}-pgbouncer-settings`, containerPath: "/var/lib/obcms/pgbouncer", readOnly: true },
        ]);
        expect(mocks.named("pgbouncer-settings").inputs.name).toBe(`obcms-database-${stack}-pgbouncer-settings`);
        expect(reload.options.dependencies).toContain("pgbouncer-settings");
        expect(mocks.named("pgbouncer-container").options.dependencies).toContain("pgbouncer-settings-reload");
        expect(exports.replicaCount).toBe(replicas);
        expect(exports.poolSize).toBe(poolSize);
    });

    it("keeps every password and URL secret, in outputs, container inputs and the commands' stdin", async () => {
        const { mocks, exports } = await declare(stack);
        for (const key of [
            "databaseUrl",
            "readonlyDatabaseUrl",
            "networkDatabaseUrl",
            "networkReadonlyDatabaseUrl",
            "pgbouncerAdminUrl",
            "memberUrls",
        ]) {
            expect(await pulumi.isSecret(exports[key] as pulumi.Output<unknown>), key).toBe(true);
        }
        const passwords = mocks.ofType("random:index/randomPassword:RandomPassword").filter((p) => p.name.startsWith("credentials-"));
        expect(passwords.map((p) => p.name).sort()).toEqual(
            ["app", "monitoring", "patroniRest", "pgbouncer", "postgres", "replicator", "restore_drill", "rewinder"].map(
                (role) => `credentials-${role}-password`,
            ),
        );
        expect(passwords.every((p) => p.inputs.length >= 32)).toBe(true);
        const values = passwords.map(mockPassword);
        for (const container of mocks.ofType("docker:index/container:Container").filter((c) => DATABASE_CONTAINER.test(c.name))) {
            // A secret upload makes the whole uploads list secret in state.
            expect(isSecretInput(container.rawInputs.uploads), container.name).toBe(true);
            expect(container.inputs.envs ?? [], container.name).toEqual([]);
            const visible = JSON.stringify([
                container.inputs.entrypoints,
                container.inputs.command,
                container.inputs.labels,
                container.inputs.healthcheck,
            ]);
            for (const value of values) {
                expect(visible, container.name).not.toContain(value);
            }
        }
        // Patroni logs in with plain passwords: its patroni.yml holds four of them, inside the secret uploads.
        const patroniYml = upload(mocks.named("primary-container"), "/etc/obcms/patroni.yml");
        for (const role of ["postgres", "replicator", "rewinder", "patroniRest"]) {
            expect(patroniYml, role).toContain(mockPassword(mocks.named(`credentials-${role}-password`)));
        }
        // The roles SQL carries verifiers; the dynamic configuration, applied or seeded, nothing secret.
        const roles = mocks.named("cluster-config-roles");
        expect(isSecretInput(roles.rawInputs.stdin)).toBe(true);
        expect(roles.inputs.stdin).toContain(`ALTER ROLE "rewinder" WITH LOGIN`);
        const dynamic = mocks.named("cluster-config-dynamic-config");
        expect(isSecretInput(dynamic.rawInputs.stdin)).toBe(false);
        const seed = mocks.named("etcd-patroni-config-seed");
        const visibleCommands = JSON.stringify([
            roles.inputs.create,
            dynamic.inputs.create,
            dynamic.inputs.stdin,
            seed.inputs.create,
            seed.inputs.stdin,
        ]);
        for (const value of values) {
            expect(visibleCommands).not.toContain(value);
        }
    });

    it("gives every container name lookups that fail fast, and PgBouncer's container both routes on loopback", async () => {
        const { mocks } = await declare(stack);
        const containers = mocks.ofType("docker:index/container:Container").filter((c) => c.name !== "monitoring-grafana");
        expect(containers.filter((c) => JSON.stringify(c.inputs.dnsOpts) !== JSON.stringify(["timeout:1", "attempts:1"]))).toEqual([]);
        expect(containers.map((c) => c.name)).toEqual(
            expect.arrayContaining(["primary-container", ...Array.from({ length: replicas }, (_, i) => `replica-${i + 1}-container`)]),
        );
        expect(mocks.named("pgbouncer-container").inputs.hosts).toEqual([
            { host: `obcms-database-${stack}-rw`, ip: "127.0.0.1" },
            { host: `obcms-database-${stack}-ro`, ip: "127.0.0.1" },
        ]);
        expect(containers.filter((c) => c.name !== "pgbouncer-container" && c.inputs.hosts !== undefined).map((c) => c.name)).toEqual([]);
    });

    it("chains the members, so that `pulumi up` replaces them one at a time, each handing the lead over first if it holds it", async () => {
        const { mocks } = await declare(stack);
        const members = ["primary", ...Array.from({ length: replicas }, (_, i) => `replica-${i + 1}`)];
        const dependencies = (name: string) => mocks.named(name).options.dependencies;
        for (const [i, member] of members.entries()) {
            expect(dependencies(`${member}-container`), member).toContain(`${member}-handover`);
            if (i > 0) {
                expect(dependencies(`${member}-handover`), member).toContain(`${members[i - 1]}-container`);
            }
            const handover = mocks.named(`${member}-handover`);
            // Nothing to hand over when the member is new; the switchover only when its container is about to change.
            expect(handover.inputs.create, member).toBe("true");
            expect(handover.inputs.update, member).toContain(`scripts/cluster.sh -c 'obcms-database-${stack}' switchover`);
            expect(handover.inputs.update, member).toContain(
                `docker inspect --format '{{index .Config.Labels "obcms.replacement-digest"}}'`,
            );
            expect(Object.keys(handover.inputs.environment), member).toEqual(["OBCMS_MEMBER_REPLACEMENT_DIGEST"]);
            const digest = handover.inputs.environment.OBCMS_MEMBER_REPLACEMENT_DIGEST;
            expect(digest, member).toMatch(/^[0-9a-f]{64}$/);
            // The running container carries it, for the handover to compare.
            expect(mocks.named(`${member}-container`).inputs.labels, member).toEqual([
                { label: "obcms.replacement-digest", value: digest },
            ]);
            // The digest covers the member's secrets (patroni.yml's passwords): it is secret too.
            expect(isSecretInput(handover.rawInputs.environment), member).toBe(true);
        }
        // Candidates: the members before it, nearest first, then the others, last first; of every member the
        // stack may have (11), so that scaling changes no handover.
        const candidates = (member: string) =>
            [...mocks.named(`${member}-handover`).inputs.update.matchAll(/'obcms-database-[a-z]+-pg-\d+:(pg-\d+)'/g)].map((m) => m[1]);
        const pg = (...ks: number[]) => ks.map((k) => `pg-${k}`);
        expect(candidates("primary")).toEqual(pg(11, 10, 9, 8, 7, 6, 5, 4, 3, 2));
        expect(candidates("replica-1")).toEqual(pg(1, 11, 10, 9, 8, 7, 6, 5, 4, 3));
        const { mocks: scaled } = await declare(stack, { replicaCount: replicas + 1 });
        for (const member of members) {
            expect(scaled.named(`${member}-handover`).inputs, member).toEqual(mocks.named(`${member}-handover`).inputs);
        }
    });

    it("changes a member's handover digest with the inputs that replace its container, and with nothing else", async () => {
        const digests = async (overrides: Record<string, unknown>) => {
            const { mocks } = await declare(stack, overrides);
            return mocks
                .ofType("command:local:Command")
                .filter((r) => r.name.endsWith("-handover"))
                .map((r) => r.inputs.environment.OBCMS_MEMBER_REPLACEMENT_DIGEST);
        };
        const before = await digests({});
        expect(new Set(before).size).toBe(replicas + 1);
        expect(await digests({ defaultPoolSize: 20 })).toEqual(before);
        const memory = await digests({ postgresMemoryMb: 4096 });
        expect(memory.every((digest, i) => digest !== before[i])).toBe(true);
    });

    it("seeds the dynamic configuration into etcd before any member starts, and applies the cluster's configuration once every member runs", async () => {
        const { mocks } = await declare(stack);
        // As the registrations hand them to the engine: a component stands for its children.
        const dependencies = new Map(mocks.resources.map((r) => [r.name, r.options.dependencies]));
        const members = ["primary", ...Array.from({ length: replicas }, (_, i) => `replica-${i + 1}`)];
        const etcdMembers = stack === "production" ? 3 : 1;
        expect(dependencies.get("etcd-patroni-config-seed")).toEqual(
            expect.arrayContaining(Array.from({ length: etcdMembers }, (_, i) => `etcd-${i + 1}-container`)),
        );
        // A member's component registers once the seed has run; its container, a child, only after that.
        for (const member of members) {
            expect(dependencies.get(member), member).toEqual(expect.arrayContaining(["etcd-patroni-config-seed"]));
        }
        // The lead moves off members about to be deleted before anything acts on the leader.
        expect(dependencies.get("cluster-config-leader-placement")).toEqual(expect.arrayContaining(members.map((m) => `${m}-container`)));
        expect(dependencies.get("cluster-config-dynamic-config")).toEqual(
            expect.arrayContaining([...members.map((m) => `${m}-container`), "cluster-config-leader-placement"]),
        );
        expect(dependencies.get("cluster-config-roles")).toEqual(expect.arrayContaining(["cluster-config-dynamic-config"]));
        expect(dependencies.get("pgbouncer-container")).toEqual(expect.arrayContaining(["cluster-config-roles"]));
    });
});

describe("TLS", () => {
    it.each([
        ["staging", "prefer", "host"],
        ["production", "require", "hostssl"],
    ] as const)(
        "%s: PgBouncer client_tls_sslmode %s, PostgreSQL client rules %s, servers verified against the stack's CA",
        async (stack, mode, hbaType) => {
            const { mocks, exports } = await declare(stack);
            const pgbouncer = mocks.named("pgbouncer-container");
            const ini = upload(pgbouncer, "/etc/obcms/pgbouncer.ini");
            expect(ini).toContain(`\nclient_tls_sslmode = ${mode}\n`);
            expect(ini).toContain("\nserver_tls_ca_file = /etc/obcms/tls/ca.crt\nserver_tls_sslmode = verify-full\n");
            const primary = mocks.named("primary-container");
            const hba = upload(primary, "/etc/obcms/pg_hba.conf");
            expect(hba).toContain(`\n${hbaType} all all all scram-sha-256\n`);
            expect(hba).toContain('\nhostssl replication "replicator" samenet scram-sha-256\n');
            expect(appliedParameters(mocks).ssl).toBe("on");
            for (const key of ["databaseUrl", "readonlyDatabaseUrl", "pgbouncerAdminUrl"]) {
                const url = new URL(await promiseOf(exports[key] as pulumi.Output<string>));
                expect(url.searchParams.get("sslmode"), key).toBe(mode);
            }
            expect(await pulumi.isSecret(exports.caCertificate as pulumi.Output<string>)).toBe(false);
        },
    );

    it("issues one key and certificate per node, each written to its service's volume by a certificate command, kept secret, and none uploaded", async () => {
        const { mocks } = await declare("production");
        expect(
            mocks
                .ofType("tls:index/privateKey:PrivateKey")
                .map((r) => r.name)
                .sort(),
        ).toEqual(
            ["ca", "backup", "pgbouncer", "primary", "replica-1", "replica-2", "replica-3", "etcd-1", "etcd-2", "etcd-3"]
                .map((n) => `tls-${n}-key`)
                .sort(),
        );
        const csr = mocks.named("tls-replica-2-csr");
        expect(csr.inputs.dnsNames).toEqual([
            "obcms-database-production-pg-3",
            "obcms-database-production-rw",
            "obcms-database-production-ro",
            "localhost",
        ]);
        // Every service takes a renewed certificate without a restart, from its volume.
        for (const [node, volume, commandName] of [
            ["pgbouncer", "pgbouncer-settings", "pgbouncer-certificate-reload"],
            ["backup", "backup-tls", "backup-certificate"],
            ...["primary", "replica-1", "replica-2", "replica-3"].map((m) => [m, `${m}-data`, `${m}-certificate`]),
            ...[1, 2, 3].map((k) => [`etcd-${k}`, `etcd-${k}-data`, `etcd-${k}-certificate`]),
        ]) {
            const container = mocks.named(`${node}-container`);
            expect(
                container.inputs.uploads.filter((u: { content: string }) => u.content.includes("PRIVATE KEY")),
                node,
            ).toEqual([]);
            const certificate = mocks.named(commandName);
            expect(certificate.inputs.stdin, node).toBe(
                `${mockPem("CERTIFICATE", `tls-${node}-cert`)}${mockPem("EC PRIVATE KEY", `tls-${node}-key`)}`,
            );
            expect(isSecretInput(certificate.rawInputs.stdin), node).toBe(true);
            expect(certificate.options.dependencies, node).toContain(volume);
            expect(container.options.dependencies, node).toContain(commandName);
        }
    });
});

describe("choices a stack can make", () => {
    it("uses a password set with `pulumi config set --secret` instead of generating one", async () => {
        const password = "Operator-Chosen-Password-0123456789";
        const { mocks, exports } = await declare("staging", { appPassword: password }, ["appPassword"]);
        expect(mocks.resources.some((r) => r.name === "credentials-app-password")).toBe(false);
        const url = await promiseOf(exports.databaseUrl as pulumi.Output<string>);
        expect(new URL(url).password).toBe(password);
        expect(await pulumi.isSecret(exports.databaseUrl as pulumi.Output<string>)).toBe(true);
    });

    it("checks PgBouncer's certificate after a RELOAD only where PgBouncer serves TLS to clients", async () => {
        for (const [clientTlsSslmode, handshakes] of [
            ["disable", false],
            ["prefer", true],
        ] as const) {
            const { mocks } = await declare("staging", { clientTlsSslmode });
            expect(mocks.named("pgbouncer-certificate-reload").inputs.create.includes("openssl s_client"), clientTlsSslmode).toBe(
                handshakes,
            );
        }
    });

    it("keeps md5 selectable for old clients, in PostgreSQL and PgBouncer alike", async () => {
        const { mocks } = await declare("staging", { authMethod: "md5" });
        const pgbouncer = mocks.named("pgbouncer-container");
        expect(upload(pgbouncer, "/etc/obcms/pgbouncer.ini")).toContain("\nauth_type = md5\n");
        const credentials = mocks.named("pgbouncer-credentials-reload");
        expect(isSecretInput(credentials.rawInputs.stdin)).toBe(true);
        const userlist = credentialsInputUserlist(credentials.inputs.stdin).trim().split("\n");
        expect(userlist).toHaveLength(3);
        expect(userlist.every((line) => /^"[a-z_]+" "md5[0-9a-f]{32}"$/.test(line))).toBe(true);
        const primary = mocks.named("primary-container");
        expect(appliedParameters(mocks).password_encryption).toBe("md5");
        expect(upload(primary, "/etc/obcms/pg_hba.conf")).toContain('\nhostssl replication "replicator" samenet md5\n');
    });

    it("limits every PostgreSQL member to postgresMemoryMb without swap and postgresCpus, /dev/shm as large as the memory, and nothing else", async () => {
        const { mocks } = await declare("production", { postgresMemoryMb: 3072, postgresCpus: 1 });
        const limits = Object.fromEntries(
            mocks
                .ofType("docker:index/container:Container")
                .map((c) => [c.name, [c.inputs.memory, c.inputs.memorySwap, c.inputs.cpus, c.inputs.shmSize]]),
        );
        const member = [3072, 3072, "1.0", 3072];
        const unlimited = [undefined, undefined, undefined, undefined];
        expect(limits).toEqual({
            "primary-container": member,
            "replica-1-container": member,
            "replica-2-container": member,
            "replica-3-container": member,
            "pgbouncer-container": unlimited,
            "backup-container": unlimited,
            "etcd-1-container": unlimited,
            "etcd-2-container": unlimited,
            "etcd-3-container": unlimited,
            "monitoring-primary-exporter": unlimited,
            "monitoring-replica-1-exporter": unlimited,
            "monitoring-replica-2-exporter": unlimited,
            "monitoring-replica-3-exporter": unlimited,
            "monitoring-pgbouncer-exporter": unlimited,
            "monitoring-prometheus": unlimited,
            "monitoring-grafana": unlimited,
        });
        expect(upload(mocks.named("replica-3-container"), "/etc/obcms/postgresql.conf")).toContain("\nshared_buffers = '768MB'\n");
    });

    it("plans no change at all when an unchanged program runs again (pulumi preview --expect-no-changes)", async () => {
        for (const stack of ["staging", "production"] as const) {
            const first = await declare(stack);
            const second = await declare(stack);
            expect(plan(first.mocks.resources, second.mocks.resources), stack).toEqual([]);
        }
    });

    it("stops every container gracefully on delete, and gives each create and delete the time its own wait and grace need", async () => {
        const { mocks } = await declare("production", { grafanaEnabled: true });
        const containers = mocks.ofType("docker:index/container:Container");
        const grace = Object.fromEntries(containers.map((c) => [c.name, c.inputs.destroyGraceSeconds]));
        expect(grace).toEqual({
            "primary-container": 120,
            "replica-1-container": 120,
            "replica-2-container": 120,
            "replica-3-container": 120,
            "pgbouncer-container": 30,
            "backup-container": 600,
            "etcd-1-container": 30,
            "etcd-2-container": 30,
            "etcd-3-container": 30,
            "monitoring-primary-exporter": 10,
            "monitoring-replica-1-exporter": 10,
            "monitoring-replica-2-exporter": 10,
            "monitoring-replica-3-exporter": 10,
            "monitoring-pgbouncer-exporter": 10,
            "monitoring-prometheus": 60,
            "monitoring-grafana": 30,
        });
        for (const c of containers) {
            // A `docker stop` by hand or an engine restart gets the same grace.
            expect(c.inputs.stopTimeout, c.name).toBe(c.inputs.destroyGraceSeconds);
            expect(c.options.timeouts.create, c.name).toBe(c.inputs.waitTimeout + 120);
            expect(c.options.timeouts.delete, c.name).toBe(c.inputs.destroyGraceSeconds + 120);
            expect(c.options.deleteBeforeReplace, c.name).toBe(true);
        }
        // Beyond the provider's 20-minute default: a replica's clone and the first full backup.
        expect(mocks.named("replica-1-container").options.timeouts.create).toBe(1920);
        expect(mocks.named("backup-container").options.timeouts.create).toBe(3720);
    });

    it("builds the project image from paths relative to the project, for the engine's platform", async () => {
        const built = await declare("staging");
        expect(built.mocks.named("image").inputs.build).toEqual({
            context: "image",
            dockerfile: "image/Dockerfile",
            platform: "linux/amd64",
        });
        const arm = await declare("staging", { imagePlatform: "linux/arm64" });
        expect(arm.mocks.named("image").inputs.build.platform).toBe("linux/arm64");
    });

    it("builds the project image by default and uses a configured image instead when set", async () => {
        const built = await declare("staging");
        expect(built.mocks.ofType("docker:index/image:Image").map((r) => r.inputs.imageName)).toEqual(["obcms-database:17"]);
        expect(built.mocks.named("primary-container").inputs.image).toBe(`sha256:${"0".repeat(64)}`);

        const configured = await declare("staging", { image: "registry.example/obcms-pg:17.2" });
        expect(configured.mocks.ofType("docker:index/image:Image")).toEqual([]);
        const images = configured.mocks
            .ofType("docker:index/container:Container")
            .filter((c) => DATABASE_CONTAINER.test(c.name))
            .map((c) => c.inputs.image);
        expect(new Set(images)).toEqual(new Set(["registry.example/obcms-pg:17.2"]));
    });

    it("publishes only PgBouncer in production", async () => {
        const { mocks, exports } = await declare("production");
        const published = mocks
            .ofType("docker:index/container:Container")
            .filter((c) => DATABASE_CONTAINER.test(c.name) && c.inputs.ports.length > 0)
            .map((c) => [c.name, c.inputs.ports]);
        expect(published).toEqual([["pgbouncer-container", [{ internal: 6432, external: 6442, ip: "127.0.0.1" }]]]);
        // Operators reach the members on the cluster network, over TLS, by member name: none is named for a role.
        const memberUrls = await promiseOf(exports.memberUrls as pulumi.Output<Record<string, string>>);
        expect(Object.keys(memberUrls)).toEqual(["pg-1", "pg-2", "pg-3", "pg-4"]);
        for (const [node, url] of Object.entries(memberUrls)) {
            const parsed = new URL(url);
            expect([parsed.username, parsed.host, parsed.pathname, parsed.search], node).toEqual([
                "postgres",
                `obcms-database-production-${node}:5432`,
                "/obcms",
                "?sslmode=require",
            ]);
        }
    });

    it("keeps data on named volumes and publishes only on the configured address", async () => {
        const { mocks } = await declare("production", { publishAddress: "10.1.2.3", publishPostgresPorts: true });
        const containers = mocks.ofType("docker:index/container:Container").filter((c) => DATABASE_CONTAINER.test(c.name));
        for (const c of containers) {
            // The backup container serves only the cluster network.
            expect(
                c.inputs.ports.map((p: { ip: string }) => p.ip),
                c.name,
            ).toEqual(c.name === "backup-container" ? [] : ["10.1.2.3"]);
            expect(c.inputs.privileged ?? false, c.name).toBe(false);
            expect(c.inputs.user, c.name).toBe("999:999");
        }
        const mounts = containers
            .filter((c) => c.name !== "pgbouncer-container")
            .map((c) => c.inputs.volumes.map((v: { volumeName: string; containerPath: string }) => `${v.volumeName}:${v.containerPath}`));
        expect(mounts.flat().sort()).toEqual([
            "obcms-database-production-backup-data:/var/lib/pgbackrest",
            "obcms-database-production-backup-drill:/var/lib/postgresql/data",
            "obcms-database-production-backup-tls:/var/lib/obcms/backup",
            ...[1, 2, 3, 4].map((k) => `obcms-database-production-pg-${k}-data:/var/lib/postgresql/data`),
        ]);
    });
});
