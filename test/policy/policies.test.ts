// Each policy against a minimal compliant resource and against every kind of
// violation it knows, with the exact message an operator reads.
import type { Policies } from "@pulumi/policy";
import { describe, expect, it } from "vitest";
import { passwordVerifier } from "../../components/render/credentials/verifier";
import { renderEtcdConf } from "../../components/render/etcd/etcd-conf";
import { seedDynamicConfigCommand } from "../../components/render/patroni/dcs-seed";
import { dynamicConfigCommand, leaderSqlCommand } from "../../components/render/patroni/leader-commands";
import { dynamicConfiguration, patroniConf, runningParameters } from "../../components/render/patroni/patroni-yml";
import { pgbouncerVolumeTarget } from "../../components/render/pgbouncer/config";
import { pgbouncerCredentialsCommand, renderCredentialsInput } from "../../components/render/pgbouncer/credentials-command";
import { type RoleSpec, renderBootstrapSql } from "../../components/render/postgres/bootstrap-sql";
import { renderYaml } from "../../components/render/yaml";
import { clusterTopology } from "../../components/topology";
import { auditLogging } from "../../policy/policies/audit-logging";
import { backupsEncrypted } from "../../policy/policies/backups-encrypted";
import { clientTlsRequired } from "../../policy/policies/client-tls-required";
import { containersUnprivileged } from "../../policy/policies/containers-unprivileged";
import { credentialFilesPrivate } from "../../policy/policies/credential-files-private";
import { credentialsNotInContainerConfig } from "../../policy/policies/credentials-not-in-container-config";
import { dataOnNamedVolumes } from "../../policy/policies/data-on-named-volumes";
import { dcsQuorum } from "../../policy/policies/dcs-quorum";
import { dcsTls } from "../../policy/policies/dcs-tls";
import { generatedPasswordsNotExposed } from "../../policy/policies/generated-passwords-not-exposed";
import { minimumReplicas } from "../../policy/policies/minimum-replicas";
import { monitoringEnabled } from "../../policy/policies/monitoring-enabled";
import { monitoringReadOnly } from "../../policy/policies/monitoring-read-only";
import { noPublicPorts } from "../../policy/policies/no-public-ports";
import { noTrustOrPlaintextAuth } from "../../policy/policies/no-trust-or-plaintext-auth";
import { patroniApiAuthenticated } from "../../policy/policies/patroni-api-authenticated";
import { replicationRestricted } from "../../policy/policies/replication-restricted";
import { slotWalBounded } from "../../policy/policies/slot-wal-bounded";
import { strongGeneratedPasswords } from "../../policy/policies/strong-generated-passwords";
import { synchronousReplication } from "../../policy/policies/synchronous-replication";
import { production } from "../render/fixtures";
import { type PackConfig, type PolicyTarget, runPolicies } from "../support/policy";

const CONTAINER = "docker:index/container:Container";
const COMMAND = "command:local:Command";

/** The postgresql.conf Patroni includes (custom_conf): what Patroni's own parameters do not set. */
const POSTGRESQL_CONF = [
    "max_slot_wal_keep_size = '2048MB'",
    "pgaudit.log = 'ddl, role'",
    "shared_preload_libraries = 'pg_stat_statements,pgaudit'",
    "ssl_key_file = '/etc/obcms/tls/server.key'",
    "",
].join("\n");

const PG_HBA = [
    "local all all peer",
    'hostssl replication "replicator" samenet scram-sha-256',
    "host replication all all reject",
    "hostssl all all all scram-sha-256",
    "",
].join("\n");

const PGBOUNCER_INI = [
    "[databases]",
    "obcms = host='primary' port='5432'",
    "[pgbouncer]",
    "auth_file = /etc/obcms/userlist.txt",
    "auth_type = scram-sha-256",
    "client_tls_key_file = /etc/obcms/tls/server.key",
    "client_tls_sslmode = require",
    "",
].join("\n");

const VERIFIER = passwordVerifier("scram-sha-256", "obcms_app", "Application-Password-0001", Buffer.alloc(16, 7));

function upload(file: string, content: string, permissions = "0644") {
    return { file, content, permissions, owner: "999", group: "999" };
}

/** The passwords patroni.yml holds: no message may quote one. */
const PATRONI_PASSWORDS = {
    superuser: "Superuser-Password-0001",
    replication: "Replication-Password-0001",
    rewind: "Rewind-Password-0001",
    rest: "Rest-Api-Password-0001",
};

/** Member k's patroni.yml as the program renders it (production), edited by `edit`. */
function patroniYml(edit: (conf: Record<string, any>) => void = () => {}, k = 1): string {
    const topology = clusterTopology(production);
    const conf: Record<string, any> = patroniConf({
        settings: production,
        scope: topology.scope,
        member: topology.members[k - 1],
        etcd: topology.etcd,
        passwords: PATRONI_PASSWORDS,
    });
    edit(conf);
    return renderYaml("edited for a policy test", conf);
}

/** A PostgreSQL server container as the program declares one (Patroni member 1), with its files and inputs replaceable. */
function postgres(
    files: { patroni?: string; conf?: string; hba?: string } = {},
    inputs: Record<string, unknown> = {},
    name = "primary-container",
): PolicyTarget {
    return {
        type: CONTAINER,
        name,
        inputs: {
            user: "999:999",
            uploads: [
                upload("/etc/obcms/patroni.yml", files.patroni ?? patroniYml(), "0600"),
                upload("/etc/obcms/postgresql.conf", files.conf ?? POSTGRESQL_CONF),
                upload("/etc/obcms/pg_hba.conf", files.hba ?? PG_HBA),
                upload("/etc/obcms/tls/server.key", "-----BEGIN EC PRIVATE KEY-----\n", "0600"),
            ],
            volumes: [{ volumeName: "obcms-database-production-pg-1-data", containerPath: "/var/lib/postgresql/data" }],
            ports: [],
            ...inputs,
        },
    };
}

/** The dynamic configuration the program renders (production), edited by `edit`. */
function dynamic(edit: (conf: Record<string, any>) => void = () => {}): Record<string, any> {
    const conf: Record<string, any> = dynamicConfiguration(production);
    edit(conf);
    return conf;
}

/** Member 1's patroni.yml carrying a dynamic configuration in bootstrap.dcs (the program seeds it into etcd instead). */
function bootstrapDcs(edit: (dcs: Record<string, any>) => void = () => {}): string {
    return patroniYml((conf) => {
        conf.bootstrap.dcs = dynamic(edit);
    });
}

/** The command the program declares to seed the dynamic configuration into etcd, as JSON. */
function seeding(config: Record<string, any>, stdin = JSON.stringify(config)): PolicyTarget {
    const t = clusterTopology(production);
    return { type: COMMAND, name: "etcd-patroni-config-seed", inputs: { create: seedDynamicConfigCommand(t.etcd, t.scope), stdin } };
}

/** The command the program declares to merge the dynamic configuration into etcd through patronictl. */
function applying(config: Record<string, any>, stdin = renderYaml("dynamic", config)): PolicyTarget {
    const t = clusterTopology(production);
    return {
        type: COMMAND,
        name: "cluster-config-dynamic-config",
        inputs: { create: dynamicConfigCommand(t.members, t.scope, runningParameters(production)), stdin },
    };
}

function pgbouncer(ini = PGBOUNCER_INI, userlist = `"obcms_app" "${VERIFIER}"\n`): PolicyTarget {
    return {
        type: CONTAINER,
        name: "pgbouncer-container",
        inputs: {
            user: "999:999",
            uploads: [upload("/etc/obcms/pgbouncer.ini", ini), upload("/etc/obcms/userlist.txt", userlist, "0600")],
            ports: [{ internal: 6432, external: 6442, ip: "127.0.0.1" }],
        },
    };
}

/** Messages the policy reports over `targets`, as mandatory violations. */
async function messages(policy: Policies[number], targets: PolicyTarget[], config: PackConfig[string] = {}): Promise<string[]> {
    const violations = await runPolicies(targets, { [policy.name]: config }, [policy]);
    expect(violations.every((v) => v.level === "mandatory" && v.policy === policy.name)).toBe(true);
    return violations.map((v) => (v.resource ? `${v.resource}: ${v.message}` : v.message));
}

describe("no-public-ports", () => {
    it("accepts loopback and private addresses", async () => {
        const ports = ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.5"].map((ip, i) => ({ internal: 5432, external: 5432 + i, ip }));
        expect(await messages(noPublicPorts, [postgres({}, { ports })])).toEqual([]);
    });

    it("refuses every host address, a public address and a port without address", async () => {
        const ports = [
            { internal: 5432, external: 5432, ip: "0.0.0.0" },
            { internal: 5432, external: 5433, ip: "203.0.113.7" },
            { internal: 5432, external: 5434 },
        ];
        const allowed = "127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16";
        expect(await messages(noPublicPorts, [postgres({}, { ports })])).toEqual([
            `primary-container: publishes port 5432 as host port 5432 on 0.0.0.0, every address of the host; publish it on an address in ${allowed} (publishAddress)`,
            `primary-container: publishes port 5432 as host port 5433 on 203.0.113.7, outside ${allowed} (publishAddress)`,
            `primary-container: publishes port 5432 as host port 5434 on 0.0.0.0, every address of the host; publish it on an address in ${allowed} (publishAddress)`,
        ]);
    });

    it("takes the allowed ranges from the policy config", async () => {
        const ports = [{ internal: 6432, external: 6432, ip: "10.1.2.3" }];
        expect(await messages(noPublicPorts, [postgres({}, { ports })], { allowedCidrs: ["127.0.0.0/8"] })).toEqual([
            "primary-container: publishes port 6432 as host port 6432 on 10.1.2.3, outside 127.0.0.0/8 (publishAddress)",
        ]);
    });
});

describe("no-trust-or-plaintext-auth", () => {
    it("accepts SCRAM in PgBouncer and pg_hba.conf, and a userlist of verifiers", async () => {
        expect(await messages(noTrustOrPlaintextAuth, [postgres(), pgbouncer()])).toEqual([]);
    });

    it.each([
        ["trust", "PgBouncer auth_type = trust lets clients in without a password; use scram-sha-256 (authMethod)"],
        ["any", "PgBouncer auth_type = any lets clients in without a password; use scram-sha-256 (authMethod)"],
        ["plain", "PgBouncer auth_type = plain keeps passwords in plain text; use scram-sha-256 (authMethod)"],
        ["md5", "PgBouncer auth_type = md5 is not an allowed password method; use scram-sha-256 (authMethod)"],
    ])("refuses PgBouncer auth_type %s", async (authType, message) => {
        const ini = PGBOUNCER_INI.replace("auth_type = scram-sha-256", `auth_type = ${authType}`);
        expect(await messages(noTrustOrPlaintextAuth, [pgbouncer(ini)])).toEqual([`pgbouncer-container: ${message}`]);
    });

    it("takes PgBouncer's default auth_type, md5, when none is set, and accepts it when md5 is allowed", async () => {
        const ini = PGBOUNCER_INI.replace("auth_type = scram-sha-256\n", "");
        expect(await messages(noTrustOrPlaintextAuth, [pgbouncer(ini)])).toEqual([
            "pgbouncer-container: PgBouncer auth_type = md5 is not an allowed password method; use scram-sha-256 (authMethod)",
        ]);
        expect(await messages(noTrustOrPlaintextAuth, [pgbouncer(ini)], { allowedPasswordMethods: ["scram-sha-256", "md5"] })).toEqual([]);
    });

    it("refuses trust, password, network ident and disallowed md5 in pg_hba.conf, not ident on the socket", async () => {
        const hba = [
            "local all all ident",
            "host all all 10.0.0.0 255.0.0.0 trust",
            "hostssl all all all password",
            "host all all samenet ident",
            'hostssl all "app" all md5',
            "",
        ].join("\n");
        expect(await messages(noTrustOrPlaintextAuth, [postgres({ hba })])).toEqual([
            'primary-container: pg_hba.conf line 2 "host all all 10.0.0.0 255.0.0.0 trust" lets clients in without a password',
            'primary-container: pg_hba.conf line 3 "hostssl all all all password" sends passwords in plain text',
            `primary-container: pg_hba.conf line 4 "host all all samenet ident" believes the client host's own claim of who the user is`,
            'primary-container: pg_hba.conf line 5 "hostssl all "app" all md5" uses md5, not scram-sha-256 (authMethod)',
        ]);
    });

    it("refuses a PostgreSQL container whose pg_hba.conf is not among its files", async () => {
        const patroni = patroniYml((conf) => {
            conf.postgresql.parameters.hba_file = "/etc/obcms/hba.conf";
        });
        expect(await messages(noTrustOrPlaintextAuth, [postgres({ patroni })])).toEqual([
            "primary-container: PostgreSQL reads /etc/obcms/hba.conf, which the container does not carry: who may log in cannot be checked",
        ]);
    });

    it("judges the pg_hba.conf Patroni writes when its parameters name none, whatever postgresql.conf says", async () => {
        const conf = `${POSTGRESQL_CONF}hba_file = '/etc/obcms/pg_hba.conf'\n`;
        const listed = patroniYml((patroni) => {
            delete patroni.postgresql.parameters.hba_file;
            patroni.postgresql.pg_hba = ["local all all peer", "host all all all trust"];
        });
        const unlisted = patroniYml((patroni) => {
            delete patroni.postgresql.parameters.hba_file;
        });
        expect(
            await messages(noTrustOrPlaintextAuth, [postgres({ conf, patroni: listed }), postgres({ conf, patroni: unlisted })]),
        ).toEqual([
            'primary-container: pg_hba.conf line 2 "host all all all trust" lets clients in without a password',
            "primary-container: PostgreSQL reads /var/lib/postgresql/data/pgdata/pg_hba.conf, which the container does not carry: who may log in cannot be checked",
        ]);
    });

    it("refuses a userlist holding a password instead of a verifier", async () => {
        const userlist = `"obcms_app" "${VERIFIER}"\n"pgbouncer" "Plain-Text-Password-01"\n"old" "md50123456789abcdef0123456789abcdef"\n`;
        expect(await messages(noTrustOrPlaintextAuth, [pgbouncer(PGBOUNCER_INI, userlist)])).toEqual([
            'pgbouncer-container: PgBouncer\'s auth_file /etc/obcms/userlist.txt holds a plain-text password for "pgbouncer", not a SCRAM-SHA-256 or md5 verifier',
        ]);
    });

    it("refuses a userlist holding a password that the credentials command writes to PgBouncer's volume", async () => {
        const t = clusterTopology(production);
        const credentials = (userlist: string): PolicyTarget => ({
            type: COMMAND,
            name: "pgbouncer-credentials-reload",
            inputs: {
                create: pgbouncerCredentialsCommand(pgbouncerVolumeTarget(production), t.members, {
                    user: "obcms_app",
                    database: "obcms",
                }),
                stdin: renderCredentialsInput({
                    password: "Application-Password-0001",
                    sql: "ALTER ROLE x;",
                    current: "SELECT true",
                    userlist,
                }),
            },
        });
        expect(await messages(noTrustOrPlaintextAuth, [credentials(`"obcms_app" "${VERIFIER}"\n`)])).toEqual([]);
        expect(await messages(noTrustOrPlaintextAuth, [credentials(`"obcms_app" "Plain-Text-Password-01"\n`)])).toEqual([
            'pgbouncer-credentials-reload: PgBouncer\'s auth_file /var/lib/obcms/pgbouncer/userlist.txt holds a plain-text password for "obcms_app", not a SCRAM-SHA-256 or md5 verifier',
        ]);
    });
});

describe("client-tls-required", () => {
    it("accepts require in PgBouncer and hostssl-only logins in PostgreSQL", async () => {
        expect(await messages(clientTlsRequired, [postgres(), pgbouncer()])).toEqual([]);
    });

    it("refuses a weaker client_tls_sslmode, and PgBouncer's default (disable) when none is set", async () => {
        const prefer = PGBOUNCER_INI.replace("client_tls_sslmode = require", "client_tls_sslmode = prefer");
        const unset = PGBOUNCER_INI.replace("client_tls_sslmode = require\n", "");
        expect(await messages(clientTlsRequired, [pgbouncer(prefer), pgbouncer(unset)])).toEqual([
            "pgbouncer-container: PgBouncer client_tls_sslmode = prefer; clients must use at least require (clientTlsSslmode)",
            "pgbouncer-container: PgBouncer client_tls_sslmode = disable; clients must use at least require (clientTlsSslmode)",
        ]);
    });

    it("refuses pg_hba.conf rules that accept network logins without TLS, when TLS is required only", async () => {
        const hba = PG_HBA.replace(
            "hostssl all all all scram-sha-256",
            "host all all all scram-sha-256\nhostnossl all all samenet scram-sha-256",
        );
        expect(await messages(clientTlsRequired, [postgres({ hba })])).toEqual([
            'primary-container: pg_hba.conf line 4 "host all all all scram-sha-256" accepts network logins without TLS (clientTlsSslmode)',
            'primary-container: pg_hba.conf line 5 "hostnossl all all samenet scram-sha-256" accepts network logins without TLS (clientTlsSslmode)',
        ]);
        const prefer = PGBOUNCER_INI.replace("client_tls_sslmode = require", "client_tls_sslmode = prefer");
        expect(await messages(clientTlsRequired, [postgres({ hba }), pgbouncer(prefer)], { minimumClientSslmode: "prefer" })).toEqual([]);
    });
});

describe("replication-restricted", () => {
    it("accepts replication for one role over TLS from samenet, and reject rules for everyone else", async () => {
        expect(await messages(replicationRestricted, [postgres()])).toEqual([]);
    });

    it("refuses replication from any address, for every role, or without TLS", async () => {
        const hba = [
            "host replication all 0.0.0.0/0 scram-sha-256",
            'hostssl "postgres,replication" "replicator" 10.0.0.0/8 scram-sha-256',
            "",
        ].join("\n");
        expect(await messages(replicationRestricted, [postgres({ hba })])).toEqual([
            `primary-container: pg_hba.conf line 1 "host replication all 0.0.0.0/0 scram-sha-256" accepts replication connections from any address; allow samenet or the cluster's range only`,
            'primary-container: pg_hba.conf line 1 "host replication all 0.0.0.0/0 scram-sha-256" accepts replication connections for every role; allow the replication role only',
            'primary-container: pg_hba.conf line 1 "host replication all 0.0.0.0/0 scram-sha-256" accepts replication connections without TLS; use hostssl',
        ]);
    });
});

describe("strong-generated-passwords", () => {
    const password = (length: number): PolicyTarget => ({
        type: "random:index/randomPassword:RandomPassword",
        name: "credentials-app-password",
        inputs: { length, special: false },
    });

    it("accepts the configured length and refuses a shorter one", async () => {
        expect(await messages(strongGeneratedPasswords, [password(16)])).toEqual([]);
        expect(await messages(strongGeneratedPasswords, [password(12)])).toEqual([
            "credentials-app-password: generates 12-character passwords; at least 16 are required",
        ]);
        expect(await messages(strongGeneratedPasswords, [password(16)], { minimumLength: 32 })).toEqual([
            "credentials-app-password: generates 16-character passwords; at least 32 are required",
        ]);
    });
});

describe("monitoring-read-only", () => {
    /** The SQL the program renders for these roles. */
    function rolesSql(roles: RoleSpec[]): string {
        return renderBootstrapSql({
            superuser: { name: "postgres", verifier: VERIFIER, attributes: [], memberOf: [] },
            roles,
            schemas: [],
            database: "obcms",
            owner: "obcms_app",
            timezone: "Asia/Manila",
            extensions: [],
        });
    }
    /** The command that pipes it into psql on the leader, as ClusterConfig declares it. */
    const rolesCommand = (roles: RoleSpec[]): PolicyTarget => ({
        type: COMMAND,
        name: "cluster-config-roles",
        inputs: { create: leaderSqlCommand(clusterTopology(production).members), stdin: rolesSql(roles) },
    });
    const role = (name: string, memberOf: string[], attributes: RoleSpec["attributes"] = []): RoleSpec => ({
        name,
        verifier: VERIFIER,
        attributes,
        memberOf,
    });
    const ini = (admins: string, stats: string) =>
        PGBOUNCER_INI.replace("[pgbouncer]\n", `[pgbouncer]\nadmin_users = ${admins}\nstats_users = ${stats}\n`);

    it("accepts a role that only reads statistics, and separate PgBouncer admin and stats users", async () => {
        const command = rolesCommand([role("obcms_app", []), role("replicator", [], ["REPLICATION"]), role("monitoring", ["pg_monitor"])]);
        expect(await messages(monitoringReadOnly, [command, pgbouncer(ini("pgbouncer", "monitoring"))])).toEqual([]);
    });

    it("refuses a monitoring role with another role or a power, and a PgBouncer stats user that is an admin", async () => {
        const command = rolesCommand([
            role("monitoring", ["pg_monitor", "pg_write_all_data"], ["REPLICATION"]),
            role("metrics", ["pg_read_all_stats", "obcms_app"]),
        ]);
        expect(await messages(monitoringReadOnly, [command, pgbouncer(ini("pgbouncer, monitoring", "monitoring"))])).toEqual([
            'cluster-config-roles: monitoring role "monitoring" is also granted "pg_write_all_data"',
            'cluster-config-roles: monitoring role "monitoring" is given REPLICATION',
            'cluster-config-roles: monitoring role "metrics" is also granted "obcms_app"',
            'pgbouncer-container: PgBouncer stats user "monitoring" is also in admin_users: it could PAUSE, KILL or SHUTDOWN the pooler',
        ]);
    });

    it("reads the SQL files a PostgreSQL server carries too, and no command that does not run psql", async () => {
        const sql = rolesSql([role("monitoring", ["pg_monitor", "pg_signal_backend"])]);
        const server = postgres();
        server.inputs.uploads.push(upload("/etc/obcms/roles.sql", sql, "0600"));
        const other: PolicyTarget = { type: COMMAND, name: "other", inputs: { create: "cat >/dev/null", stdin: sql } };
        expect(await messages(monitoringReadOnly, [server, other])).toEqual([
            'primary-container: monitoring role "monitoring" is also granted "pg_signal_backend"',
        ]);
    });
});

describe("credentials-not-in-container-config", () => {
    it("accepts file references and connection strings without passwords", async () => {
        const target = postgres(
            {},
            {
                envs: [
                    "GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/obcms/grafana/admin-password",
                    "PGPASSFILE=/etc/obcms/pgpass",
                    "TZ=Asia/Manila",
                ],
                entrypoints: ["/bin/sh", "/etc/obcms/start.sh"],
                command: ["postgres_exporter", "--url=postgresql://monitoring@primary:5432/obcms?sslmode=verify-full"],
                healthcheck: { tests: ["CMD", "pg_isready"] },
                labels: [{ label: "role", value: "primary" }],
            },
        );
        expect(await messages(credentialsNotInContainerConfig, [target])).toEqual([]);
    });

    it("refuses credentials in the environment, command, entrypoint, health check and labels", async () => {
        const target = postgres(
            {},
            {
                envs: ["POSTGRES_PASSWORD=hunter2hunter2", "DATABASE_URL=postgresql://obcms_app:hunter2@pgbouncer:6432/obcms"],
                command: ["psql", "host=primary password=hunter2"],
                entrypoints: ["sh", "-c", "PGPASSWORD=hunter2 psql"],
                healthcheck: { tests: ["CMD", "psql", "postgresql://postgres:hunter2@localhost/postgres"] },
                labels: [{ label: "dsn", value: "postgres://u:p@h/d" }],
            },
        );
        expect(await messages(credentialsNotInContainerConfig, [target])).toEqual([
            "primary-container: environment variable POSTGRES_PASSWORD carries a credential; upload it as a 0600 file and pass the file's path (POSTGRES_PASSWORD_FILE) instead",
            "primary-container: environment variable DATABASE_URL holds a password inside a connection string; use a password file instead",
            "primary-container: command holds a password; pass credentials in a password file instead",
            "primary-container: entrypoint holds a password; pass credentials in a password file instead",
            "primary-container: health check holds a password; pass credentials in a password file instead",
            "primary-container: label dsn holds a password; pass credentials in a password file instead",
        ]);
    });
});

describe("generated-passwords-not-exposed", () => {
    const password: PolicyTarget = {
        type: "random:index/randomPassword:RandomPassword",
        name: "credentials-app-password",
        inputs: { length: 32 },
        outputs: { length: 32, result: "Generated0Password0Value0000000x" },
    };

    it("accepts a password in a private file only, or on a command's standard input", async () => {
        const target = pgbouncer(PGBOUNCER_INI, '"obcms_app" "Generated0Password0Value0000000x"\n');
        const piped: PolicyTarget = {
            type: COMMAND,
            name: "roles",
            inputs: { create: "psql -f -", stdin: "PASSWORD 'Generated0Password0Value0000000x'" },
        };
        expect(await messages(generatedPasswordsNotExposed, [password, target, piped])).toEqual([]);
    });

    it("refuses a generated password in a command's command lines or environment", async () => {
        const command: PolicyTarget = {
            type: COMMAND,
            name: "roles",
            inputs: {
                create: "psql postgresql://postgres:Generated0Password0Value0000000x@leader/postgres",
                delete: "echo Generated0Password0Value0000000x",
                environment: { PGPASSWORD: "Generated0Password0Value0000000x" },
            },
        };
        expect(await messages(generatedPasswordsNotExposed, [password, command])).toEqual([
            "roles: command roles shows password credentials-app-password in its create command",
            "roles: command roles shows password credentials-app-password in its delete command",
            "roles: command roles shows password credentials-app-password in its environment",
        ]);
    });

    it("refuses a generated password in the environment, labels or a world-readable file", async () => {
        const target = postgres(
            { conf: `${POSTGRESQL_CONF}# Generated0Password0Value0000000x\n` },
            {
                envs: ["SECRET_FILE=Generated0Password0Value0000000x"],
                labels: [{ label: "note", value: "Generated0Password0Value0000000x" }],
            },
        );
        expect(await messages(generatedPasswordsNotExposed, [password, target])).toEqual([
            "primary-container: container primary-container shows password credentials-app-password in its environment",
            "primary-container: container primary-container shows password credentials-app-password in its labels",
            "primary-container: container primary-container shows password credentials-app-password in its world-readable file /etc/obcms/postgresql.conf",
        ]);
    });
});

describe("credential-files-private", () => {
    it("accepts 0600 files of the service user and a 0640 file owned by root", async () => {
        const target = pgbouncer();
        target.inputs.uploads.push({ file: "/etc/obcms/grafana/admin-password", content: "x", permissions: "0640" });
        expect(await messages(credentialFilesPrivate, [postgres(), target])).toEqual([]);
    });

    it("refuses credential files others can read, found by the program's paths, the services' config and their names", async () => {
        const ini = PGBOUNCER_INI.replace("auth_file = /etc/obcms/userlist.txt", "auth_file = /etc/obcms/users.txt");
        const target = pgbouncer(ini);
        target.inputs.uploads.push(
            upload("/etc/obcms/users.txt", `"obcms_app" "${VERIFIER}"\n`, "0640"),
            upload("/etc/obcms/bootstrap.sql", "ALTER ROLE ...", "0644"),
            upload("/etc/obcms/app-secret", "x", "0604"),
            { file: "/etc/obcms/grafana/admin-password", content: "x", permissions: "0644" },
        );
        expect(await messages(credentialFilesPrivate, [target])).toEqual([
            "pgbouncer-container: /etc/obcms/users.txt holds credentials but is 0640 owned by 999; it must be at most 0600, or 0640 when owned by root",
            "pgbouncer-container: /etc/obcms/bootstrap.sql holds credentials but is 0644 owned by 999; it must be at most 0600, or 0640 when owned by root",
            "pgbouncer-container: /etc/obcms/app-secret holds credentials but is 0604 owned by 999; it must be at most 0600, or 0640 when owned by root",
            "pgbouncer-container: /etc/obcms/grafana/admin-password holds credentials but is 0644 owned by 0; it must be at most 0600, or 0640 when owned by root",
        ]);
    });

    it("refuses a patroni.yml others can read, and the private keys Patroni's config names, each once", async () => {
        const patroni = patroniYml((conf) => {
            conf.restapi.keyfile = "/etc/obcms/rest/api.pem";
            conf.etcd3.key = "/etc/obcms/tls/server.key";
        });
        const target = postgres({}, {}, "primary-container");
        target.inputs.uploads = target.inputs.uploads.map((u: { file: string }) =>
            u.file === "/etc/obcms/patroni.yml"
                ? upload(u.file, patroni, "0640")
                : u.file === "/etc/obcms/tls/server.key"
                  ? upload(u.file, "-----BEGIN EC PRIVATE KEY-----\n", "0644")
                  : u,
        );
        target.inputs.uploads.push(upload("/etc/obcms/rest/api.pem", "-----BEGIN EC PRIVATE KEY-----\n", "0644"));
        expect(await messages(credentialFilesPrivate, [target])).toEqual([
            "primary-container: /etc/obcms/patroni.yml holds credentials but is 0640 owned by 999; it must be at most 0600, or 0640 when owned by root",
            "primary-container: /etc/obcms/tls/server.key holds credentials but is 0644 owned by 999; it must be at most 0600, or 0640 when owned by root",
            "primary-container: /etc/obcms/rest/api.pem holds credentials but is 0644 owned by 999; it must be at most 0600, or 0640 when owned by root",
        ]);
    });
});

describe("containers-unprivileged", () => {
    it("accepts a non-root user without privileges, including a root group", async () => {
        expect(await messages(containersUnprivileged, [postgres(), postgres({}, { user: "472:0" })])).toEqual([]);
    });

    it("refuses root, no user, privilege, added capabilities, host namespaces and the Docker socket", async () => {
        const targets = [
            postgres({}, { user: "0:0" }),
            postgres({}, { user: "root" }),
            postgres({}, { user: undefined }),
            postgres(
                {},
                {
                    privileged: true,
                    capabilities: { adds: ["SYS_ADMIN", "NET_ADMIN"] },
                    networkMode: "host",
                    pidMode: "host",
                    volumes: [{ hostPath: "/var/run/docker.sock", containerPath: "/var/run/docker.sock" }],
                    mounts: [{ type: "bind", source: "/run/docker.sock", target: "/docker.sock" }],
                },
            ),
        ];
        expect(await messages(containersUnprivileged, targets)).toEqual([
            'primary-container: runs as root (user "0:0")',
            'primary-container: runs as root (user "root")',
            "primary-container: sets no user, so it runs as its image's default user, root in most images",
            "primary-container: is privileged: it gets every capability and every device of the host",
            "primary-container: adds capabilities SYS_ADMIN, NET_ADMIN",
            "primary-container: shares the host's namespace (networkMode = host)",
            "primary-container: shares the host's namespace (pidMode = host)",
            "primary-container: mounts the Docker socket /var/run/docker.sock, which gives it root on the host",
            "primary-container: mounts the Docker socket /run/docker.sock, which gives it root on the host",
        ]);
    });
});

describe("data-on-named-volumes", () => {
    it("accepts a named volume over the data directory's parent or the directory itself", async () => {
        const own = postgres({}, { volumes: [{ volumeName: "data", containerPath: "/var/lib/postgresql/data/pgdata" }] });
        const mount = postgres({}, { volumes: [], mounts: [{ type: "volume", source: "data", target: "/var/lib/postgresql" }] });
        expect(await messages(dataOnNamedVolumes, [postgres(), own, mount])).toEqual([]);
    });

    it("refuses data in the container, in a host directory, on tmpfs, or on an anonymous volume", async () => {
        const targets = [
            postgres({}, { volumes: [] }),
            postgres({}, { volumes: [{ hostPath: "/srv/pg", containerPath: "/var/lib/postgresql/data" }] }),
            postgres({}, { mounts: [{ type: "tmpfs", target: "/var/lib/postgresql/data/pgdata" }] }),
            postgres({}, { volumes: [], mounts: [{ type: "volume", target: "/var/lib/postgresql/data" }] }),
        ];
        expect(await messages(dataOnNamedVolumes, targets)).toEqual([
            "primary-container: keeps PostgreSQL's data directory /var/lib/postgresql/data/pgdata in the container itself: it is lost with the container; mount a named volume there",
            "primary-container: keeps PostgreSQL's data directory /var/lib/postgresql/data/pgdata on host directory /srv/pg at /var/lib/postgresql/data; mount a named volume there",
            "primary-container: keeps PostgreSQL's data directory /var/lib/postgresql/data/pgdata on a tmpfs mount at /var/lib/postgresql/data/pgdata; mount a named volume there",
            "primary-container: keeps PostgreSQL's data directory /var/lib/postgresql/data/pgdata on an anonymous volume at /var/lib/postgresql/data; mount a named volume there",
        ]);
    });

    it("takes the data directory from Patroni's postgresql.data_dir", async () => {
        const elsewhere = patroniYml((conf) => {
            conf.postgresql.data_dir = "/srv/postgresql";
        });
        const unset = patroniYml((conf) => {
            delete conf.postgresql.data_dir;
        });
        expect(await messages(dataOnNamedVolumes, [postgres({ patroni: elsewhere }), postgres({ patroni: unset })])).toEqual([
            "primary-container: keeps PostgreSQL's data directory /srv/postgresql in the container itself: it is lost with the container; mount a named volume there",
            "primary-container: patroni.yml sets no postgresql.data_dir: Patroni cannot start, and where the data lives cannot be checked",
        ]);
    });
});

describe("slot-wal-bounded", () => {
    it("accepts a bound or no setting in a server's own files, and refuses -1 there, in postgresql.conf or Patroni's parameters", async () => {
        const unlimited = POSTGRESQL_CONF.replace("max_slot_wal_keep_size = '2048MB'", "max_slot_wal_keep_size = -1");
        const unset = POSTGRESQL_CONF.replace("max_slot_wal_keep_size = '2048MB'\n", "");
        expect(await messages(slotWalBounded, [postgres(), postgres({ conf: unset })])).toEqual([]);
        const bootstrapping = bootstrapDcs((dcs) => {
            dcs.postgresql.parameters.max_slot_wal_keep_size = -1;
        });
        const message =
            "primary-container: postgresql.conf or Patroni's parameters set max_slot_wal_keep_size = -1 (unlimited): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)";
        expect(await messages(slotWalBounded, [postgres({ conf: unlimited }), postgres({ patroni: bootstrapping })])).toEqual([
            message,
            message,
        ]);
    });

    it("refuses -1 or no setting in the dynamic configuration the stack writes into etcd", async () => {
        const unbounded = dynamic((conf) => {
            conf.postgresql.parameters.max_slot_wal_keep_size = "-1";
        });
        const unset = dynamic((conf) => {
            delete conf.postgresql.parameters.max_slot_wal_keep_size;
        });
        expect(await messages(slotWalBounded, [seeding(dynamic()), applying(dynamic())])).toEqual([]);
        expect(await messages(slotWalBounded, [seeding(unbounded), applying(unbounded), seeding(unset), applying(unset)])).toEqual([
            "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put) sets max_slot_wal_keep_size = -1 (unlimited): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)",
            "cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config) sets max_slot_wal_keep_size = -1 (unlimited): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)",
            "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put) leaves max_slot_wal_keep_size unset (PostgreSQL's default, -1): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)",
            "cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config) leaves max_slot_wal_keep_size unset (etcd keeps the value it holds, which the stack does not declare): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)",
        ]);
    });
});

describe("audit-logging", () => {
    it("accepts pgaudit logging the required classes, or all of them", async () => {
        const all = POSTGRESQL_CONF.replace("pgaudit.log = 'ddl, role'", "pgaudit.log = 'all, -misc'");
        expect(await messages(auditLogging, [postgres(), postgres({ conf: all })])).toEqual([]);
    });

    it("refuses a server without pgaudit, and one that does not log a required class", async () => {
        const without = POSTGRESQL_CONF.replace("pg_stat_statements,pgaudit", "pg_stat_statements");
        const excluded = POSTGRESQL_CONF.replace("pgaudit.log = 'ddl, role'", "pgaudit.log = 'all, -role'");
        expect(
            await messages(auditLogging, [postgres({ conf: without }), postgres({ conf: excluded })], {
                requiredClasses: ["ddl", "role", "write"],
            }),
        ).toEqual([
            "primary-container: postgresql.conf and Patroni's parameters do not preload pgaudit (shared_preload_libraries): nothing is audited",
            "primary-container: pgaudit.log = all, -role does not log role (auditLog)",
        ]);
        const none = POSTGRESQL_CONF.replace("pgaudit.log = 'ddl, role'", "pgaudit.log = none");
        expect(await messages(auditLogging, [postgres({ conf: none })])).toEqual([
            "primary-container: pgaudit.log = none does not log ddl, role (auditLog)",
        ]);
    });

    it("takes Patroni's dynamic parameters over postgresql.conf, and the member's own over the dynamic ones", async () => {
        const bootstrapping = bootstrapDcs((dcs) => {
            dcs.postgresql.parameters["pgaudit.log"] = "ddl";
        });
        const local = patroniYml((conf) => {
            conf.bootstrap.dcs = dynamic((dcs) => {
                dcs.postgresql.parameters["pgaudit.log"] = "ddl";
            });
            conf.postgresql.parameters["PGAUDIT.LOG"] = "role, ddl";
        });
        expect(await messages(auditLogging, [postgres({ patroni: bootstrapping }), postgres({ patroni: local })])).toEqual([
            "primary-container: pgaudit.log = ddl does not log role (auditLog)",
        ]);
    });

    it("refuses a dynamic configuration the stack writes into etcd that drops pgaudit, a required class, or pgaudit.log", async () => {
        const weakened = dynamic((conf) => {
            conf.postgresql.parameters.shared_preload_libraries = "pg_stat_statements";
            conf.postgresql.parameters["pgaudit.log"] = "ddl";
        });
        const unset = dynamic((conf) => {
            delete conf.postgresql.parameters["pgaudit.log"];
        });
        expect(await messages(auditLogging, [seeding(dynamic()), applying(dynamic())])).toEqual([]);
        expect(await messages(auditLogging, [seeding(weakened), seeding(unset), applying(unset)])).toEqual([
            "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put) sets shared_preload_libraries = pg_stat_statements, without pgaudit: nothing is audited",
            "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put) sets pgaudit.log = ddl, which does not log role (auditLog)",
            "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put) leaves pgaudit.log unset (pgaudit's default, none) (auditLog)",
            "cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config) leaves pgaudit.log unset (etcd keeps the value it holds, which the stack does not declare) (auditLog)",
        ]);
    });

    it("leaves pgaudit.log to the dynamic configuration when a server's own files do not set it", async () => {
        const unset = POSTGRESQL_CONF.replace("pgaudit.log = 'ddl, role'\n", "");
        expect(await messages(auditLogging, [postgres({ conf: unset })])).toEqual([]);
    });
});

describe("backups-encrypted", () => {
    const repositoryHost = (conf: string, permissions = "0600"): PolicyTarget => ({
        type: CONTAINER,
        name: "backup-container",
        inputs: { user: "999:999", uploads: [upload("/etc/obcms/pgbackrest.conf", conf, permissions)] },
    });

    it("accepts an encrypted repository in a private config, and clients of a repository host", async () => {
        const host = repositoryHost("[global]\nrepo1-path=/var/lib/pgbackrest\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=secret\n");
        const client = postgres();
        client.inputs.uploads.push(upload("/etc/obcms/pgbackrest.conf", "[global]\nrepo1-host=backup\nrepo1-host-type=tls\n"));
        expect(await messages(backupsEncrypted, [host, client])).toEqual([]);
    });

    it("refuses an unencrypted repository and a passphrase others can read", async () => {
        const conf = "[global]\nrepo1-path=/var/lib/pgbackrest\nrepo2-type=s3\nrepo2-cipher-type=aes-256-cbc\nrepo2-cipher-pass=secret\n";
        expect(await messages(backupsEncrypted, [repositoryHost(conf, "0644")])).toEqual([
            "backup-container: /etc/obcms/pgbackrest.conf: repository repo1 is written unencrypted (repo1-cipher-type = none)",
            "backup-container: /etc/obcms/pgbackrest.conf holds credentials but is 0644 owned by 999; it must be at most 0600, or 0640 when owned by root",
        ]);
    });
});

/** Patroni member k (pg-k): member 1 is the `primary` component, k > 1 `replica-(k-1)`. */
function member(k: number): PolicyTarget {
    return postgres({ patroni: patroniYml(undefined, k) }, {}, k === 1 ? "primary-container" : `replica-${k - 1}-container`);
}

describe("minimum-replicas", () => {
    it("counts the PostgreSQL servers Patroni runs, but the one that leads", async () => {
        const cluster = [member(1), member(2), member(3), pgbouncer()];
        expect(await messages(minimumReplicas, cluster, { minimumReplicas: 2 })).toEqual([]);
        expect(await messages(minimumReplicas, cluster)).toEqual([
            "the stack runs 2 streaming replica(s); at least 3 are required (replicaCount)",
        ]);
        expect(await messages(minimumReplicas, [pgbouncer()], { minimumReplicas: 1 })).toEqual([
            "the stack runs 0 streaming replica(s); at least 1 are required (replicaCount)",
        ]);
    });
});

/** An etcd member carrying the config the program renders, edited by `edit`. */
function etcdMember(k: number, edit: (conf: string) => string = (conf) => conf): PolicyTarget {
    const members = clusterTopology(production).etcd;
    const conf = renderEtcdConf({ member: members[k - 1], members, clusterToken: "t" });
    return {
        type: CONTAINER,
        name: `etcd-${k}-container`,
        inputs: { user: "999:999", uploads: [upload("/etc/obcms/etcd.yml", edit(conf))] },
    };
}

describe("dcs-tls", () => {
    it("accepts the etcd and Patroni configs the program renders", async () => {
        expect(await messages(dcsTls, [etcdMember(1), postgres()])).toEqual([]);
    });

    it("refuses clear-text URLs and ports that take requests without a trusted certificate", async () => {
        const weakened = etcdMember(2, (conf) =>
            conf
                .replace('"listen-client-urls": "https://0.0.0.0:2379"', '"listen-client-urls": "https://0.0.0.0:2379,http://0.0.0.0:2389"')
                .replace('"initial-advertise-peer-urls": "https://', '"initial-advertise-peer-urls": "http://')
                .replace('"client-cert-auth": true', '"client-cert-auth": false'),
        );
        expect(await messages(dcsTls, [weakened])).toEqual([
            'etcd-2-container: etcd.yml: listen-client-urls "http://0.0.0.0:2389" is not https: the store\'s traffic would travel in clear text',
            'etcd-2-container: etcd.yml: initial-advertise-peer-urls "http://obcms-database-production-etcd-2:2380" is not https: the store\'s traffic would travel in clear text',
            "etcd-2-container: etcd.yml: client-transport-security does not require a certificate from a trusted CA (client-cert-auth, trusted-ca-file): anyone who reaches the port could read and write the cluster's state",
        ]);
    });

    it("refuses a Patroni member that reaches etcd in clear text, or without checking or presenting a certificate", async () => {
        const plain = patroniYml((conf) => {
            delete conf.etcd3.protocol;
            delete conf.etcd3.cacert;
            delete conf.etcd3.key;
        });
        const proxied = patroniYml((conf) => {
            conf.etcd3.proxy = "http://etcd-proxy:2379";
        });
        const v2 = patroniYml((conf) => {
            conf.etcd = { url: "https://obcms-database-production-etcd-1:2379", cacert: "/etc/obcms/tls/ca.crt" };
            delete conf.etcd3;
        });
        const none = patroniYml((conf) => {
            delete conf.etcd3;
        });
        const targets = [plain, proxied, v2, none].map((patroni) => postgres({ patroni }));
        expect(await messages(dcsTls, targets)).toEqual([
            "primary-container: patroni.yml: etcd3 reaches etcd over http, not https: who leads would be decided in clear text",
            "primary-container: patroni.yml: etcd3 sets no cacert: Patroni would take any server for etcd, without checking its certificate",
            "primary-container: patroni.yml: etcd3 presents no client certificate (cert and key): only an etcd that takes requests from anyone could serve it",
            "primary-container: patroni.yml: etcd3 reaches etcd over http, not https: who leads would be decided in clear text",
            "primary-container: patroni.yml: etcd presents no client certificate (cert and key): only an etcd that takes requests from anyone could serve it",
            "primary-container: patroni.yml has no etcd3 section: Patroni would keep the cluster's state outside the stack's etcd",
        ]);
    });
});

describe("dcs-quorum", () => {
    it("counts the containers that carry an etcd config", async () => {
        const cluster = [etcdMember(1), postgres(), pgbouncer()];
        expect(await messages(dcsQuorum, cluster, { minimumEtcdMembers: 1 })).toEqual([]);
        expect(await messages(dcsQuorum, cluster)).toEqual(["the stack runs 1 etcd member(s); at least 3 are required (etcdMembers)"]);
        expect(await messages(dcsQuorum, [etcdMember(1), etcdMember(2), etcdMember(3)])).toEqual([]);
    });
});

describe("patroni-api-authenticated", () => {
    it("accepts the REST API the program configures, and the older auth form", async () => {
        const older = patroniYml((conf) => {
            delete conf.restapi.authentication;
            conf.restapi.auth = `patroni:${PATRONI_PASSWORDS.rest}`;
        });
        expect(await messages(patroniApiAuthenticated, [postgres(), postgres({ patroni: older })])).toEqual([]);
    });

    it("refuses an API without a password or TLS, and a patronictl that checks no certificate, quoting no password", async () => {
        const open = patroniYml((conf) => {
            conf.restapi.authentication = { username: "patroni" };
            conf.restapi.listen = "0.0.0.0:8018";
            delete conf.restapi.certfile;
            delete conf.restapi.keyfile;
            // Python's truth: a non-empty string is true.
            conf.ctl.insecure = "false";
        });
        const passwordOnly = patroniYml((conf) => {
            delete conf.restapi.authentication;
            conf.restapi.auth = `:${PATRONI_PASSWORDS.rest}`;
        });
        const found = await messages(patroniApiAuthenticated, [postgres({ patroni: open }), postgres({ patroni: passwordOnly })]);
        expect(found).toEqual([
            "primary-container: patroni.yml: restapi has no authentication (username and password): anyone who reaches port 8018 could switch the leader over, restart or reinitialize a member, or change the cluster's configuration",
            "primary-container: patroni.yml: restapi sets no certfile: the API serves plain HTTP, and its password would travel in clear text",
            "primary-container: patroni.yml: ctl is insecure: patronictl would send the API's password to whoever answers, without checking its certificate",
            "primary-container: patroni.yml: restapi has no authentication (username and password): anyone who reaches port 8008 could switch the leader over, restart or reinitialize a member, or change the cluster's configuration",
        ]);
        expect(found.filter((m) => Object.values(PATRONI_PASSWORDS).some((p) => m.includes(p)))).toEqual([]);
    });
});

describe("synchronous-replication", () => {
    const lost = "a commit is acknowledged before any replica has it, so a failover can lose it";
    const required = "at least 1 replica(s) must confirm each commit (synchronousReplicas)";
    const seeded = "etcd-patroni-config-seed: the dynamic configuration it seeds into etcd (etcdctl put):";
    const applied = "cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config):";

    it("accepts production's quorum commit wherever it is declared, and the strict mode's floor of one replica", async () => {
        const strict = bootstrapDcs((dcs) => {
            dcs.synchronous_node_count = 0;
        });
        const on = bootstrapDcs((dcs) => {
            dcs.synchronous_mode = "on";
        });
        const targets = [postgres(), postgres({ patroni: strict }), postgres({ patroni: on }), seeding(dynamic()), applying(dynamic())];
        expect(await messages(synchronousReplication, targets)).toEqual([]);
    });

    it("refuses asynchronous replication in the configuration the stack seeds, however Patroni spells it", async () => {
        const targets = [
            dynamic((conf) => {
                conf.synchronous_mode = false;
            }),
            dynamic((conf) => {
                conf.synchronous_mode = "off";
            }),
            dynamic((conf) => {
                delete conf.synchronous_mode;
            }),
            dynamic((conf) => {
                conf.synchronous_node_count = 0;
                conf.synchronous_mode_strict = false;
            }),
        ].map((conf) => seeding(conf));
        expect(await messages(synchronousReplication, targets)).toEqual([
            `${seeded} synchronous_mode = false: ${lost}; ${required}`,
            `${seeded} synchronous_mode = off: ${lost}; ${required}`,
            `${seeded} synchronous_mode is unset: Patroni's default is off; ${required}`,
            `${seeded} synchronous_node_count = 0: each commit waits for 0 replica(s); ${required}`,
        ]);
    });

    it("refuses a configuration the stack applies that is asynchronous, silent about it, or not YAML, and a member's bootstrap.dcs", async () => {
        const targets = [
            applying(
                dynamic((conf) => {
                    conf.synchronous_mode = false;
                    delete conf.synchronous_node_count;
                }),
            ),
            applying(
                dynamic((conf) => {
                    delete conf.synchronous_mode;
                }),
            ),
            applying({}, "ttl: [20\n"),
            postgres({
                patroni: bootstrapDcs((dcs) => {
                    dcs.synchronous_mode = "off";
                }),
            }),
        ];
        expect(await messages(synchronousReplication, targets)).toEqual([
            `${applied} synchronous_mode = false: ${lost}; ${required}`,
            `${applied} synchronous_mode is unset: etcd keeps the value it holds, which the stack does not declare; ${required}`,
            "cluster-config-dynamic-config: the dynamic configuration it applies (patronictl edit-config) is not valid YAML (line 2): Patroni cannot use it, and this check cannot run",
            `primary-container: patroni.yml: bootstrap.dcs synchronous_mode = off: ${lost}; ${required}`,
        ]);
    });

    it("takes the number of replicas from the policy config, and asks nothing with 0", async () => {
        const asynchronous = dynamic((conf) => {
            conf.synchronous_mode = false;
        });
        expect(
            await messages(synchronousReplication, [seeding(asynchronous), applying(asynchronous)], { minimumSynchronousReplicas: 0 }),
        ).toEqual([]);
        expect(await messages(synchronousReplication, [seeding(dynamic())], { minimumSynchronousReplicas: 2 })).toEqual([
            `${seeded} synchronous_node_count = 1: each commit waits for 1 replica(s); at least 2 replica(s) must confirm each commit (synchronousReplicas)`,
        ]);
    });

    it("reads no other command's input", async () => {
        const other: PolicyTarget = {
            type: COMMAND,
            name: "other",
            inputs: { create: "etcdctl get /service/x/config", stdin: "synchronous_mode: off\n" },
        };
        expect(await messages(synchronousReplication, [other])).toEqual([]);
    });
});

describe("monitoring-enabled", () => {
    const prometheus = (yaml: string): PolicyTarget => ({
        type: CONTAINER,
        name: "monitoring-prometheus",
        inputs: { user: "999:999", uploads: [upload("/etc/obcms/prometheus.yml", yaml)] },
    });
    const scraping = (instances: string[], rules = '["/etc/obcms/alert-rules.yml"]') =>
        prometheus(
            `rule_files: ${rules}\nscrape_configs:\n  - job_name: postgres\n    static_configs:\n` +
                instances.map((i) => `      - targets: ["${i}-exporter:9187"]\n        labels: { instance: "${i}" }\n`).join(""),
        );

    it("accepts a Prometheus with alert rules that scrapes every PostgreSQL server, by Patroni member name", async () => {
        expect(await messages(monitoringEnabled, [member(1), member(2), scraping(["pg-1", "pg-2"])])).toEqual([]);
    });

    it("refuses a stack without Prometheus, without alert rules, or with a server nobody scrapes", async () => {
        expect(await messages(monitoringEnabled, [member(1)])).toEqual([
            "no container runs Prometheus (none carries a prometheus.yml): nothing watches the cluster or raises an alert (monitoringEnabled)",
        ]);
        expect(await messages(monitoringEnabled, [member(1), member(2), scraping(["pg-1"], "[]")])).toEqual([
            "Prometheus loads no alert rules (rule_files is empty): nothing raises an alert",
            'replica-1-container: Prometheus scrapes no exporter for PostgreSQL server "pg-2"',
        ]);
    });
});

describe("PostgreSQL servers, found by Patroni's configuration", () => {
    it("are the containers that carry a patroni.yml, not those that carry a postgresql.conf", async () => {
        const bare: PolicyTarget = {
            type: CONTAINER,
            name: "scratch-container",
            inputs: { user: "999:999", uploads: [upload("/etc/obcms/postgresql.conf", "shared_preload_libraries = ''\n")] },
        };
        expect(await messages(auditLogging, [bare])).toEqual([]);
        const withoutCustomConf = patroniYml((conf) => {
            delete conf.postgresql.custom_conf;
        });
        expect(await messages(auditLogging, [postgres({ patroni: withoutCustomConf })])).toEqual([
            "primary-container: postgresql.conf and Patroni's parameters do not preload pgaudit (shared_preload_libraries): nothing is audited",
        ]);
    });

    it("read custom_conf relative to the data directory", async () => {
        const relative = patroniYml((conf) => {
            conf.postgresql.data_dir = "/etc/obcms";
            conf.postgresql.custom_conf = "postgresql.conf";
        });
        expect(await messages(auditLogging, [postgres({ patroni: relative })])).toEqual([]);
    });

    it("read patroni.yml as Patroni does: YAML 1.1, where a bare no is false, and a repeated key wins", async () => {
        const bareNo = `${patroniYml()}ctl:\n  insecure: no\n`;
        const quotedNo = `${patroniYml()}ctl:\n  insecure: "no"\n`;
        expect(await messages(patroniApiAuthenticated, [postgres({ patroni: bareNo }), postgres({ patroni: quotedNo })])).toEqual([
            "primary-container: patroni.yml: ctl is insecure: patronictl would send the API's password to whoever answers, without checking its certificate",
        ]);
    });

    it("whose patroni.yml does not parse are reported by each check that reads it, without quoting it", async () => {
        const broken = patroniYml().replace(`password: "${PATRONI_PASSWORDS.rest}"`, `password: [${PATRONI_PASSWORDS.rest}`);
        expect(broken).toContain(PATRONI_PASSWORDS.rest);
        const line = broken.slice(0, broken.indexOf(`[${PATRONI_PASSWORDS.rest}`)).split("\n").length;
        const message = `primary-container: patroni.yml is not valid YAML (line ${line + 1}): Patroni cannot start, and this check cannot run`;
        for (const policy of [auditLogging, patroniApiAuthenticated, dcsTls, synchronousReplication]) {
            expect(await messages(policy, [postgres({ patroni: broken })])).toEqual([message]);
        }
        const alias = patroniYml().replace(`password: "${PATRONI_PASSWORDS.rest}"`, `password: *${PATRONI_PASSWORDS.rest}`);
        expect(await messages(slotWalBounded, [postgres({ patroni: alias })])).toEqual([
            "primary-container: patroni.yml is not valid YAML: Patroni cannot start, and this check cannot run",
        ]);
    });
});
