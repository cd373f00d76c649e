// Each policy against a minimal compliant resource and against every kind of
// violation it knows, with the exact message an operator reads.
import type { Policies } from "@pulumi/policy";
import { describe, expect, it } from "vitest";
import { passwordVerifier } from "../../components/render/credentials/verifier";
import { renderEtcdConf } from "../../components/render/etcd/etcd-conf";
import { type RoleSpec, renderBootstrapSql } from "../../components/render/postgres/bootstrap-sql";
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
import { replicationRestricted } from "../../policy/policies/replication-restricted";
import { slotWalBounded } from "../../policy/policies/slot-wal-bounded";
import { strongGeneratedPasswords } from "../../policy/policies/strong-generated-passwords";
import { production } from "../render/fixtures";
import { type PackConfig, type PolicyTarget, runPolicies } from "../support/policy";

const CONTAINER = "docker:index/container:Container";

const POSTGRESQL_CONF = [
    "cluster_name = 'primary'",
    "hba_file = '/etc/obcms/pg_hba.conf'",
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

/** A PostgreSQL server container as the program declares one, with its files and inputs replaceable. */
function postgres(
    files: { conf?: string; hba?: string } = {},
    inputs: Record<string, unknown> = {},
    name = "primary-container",
): PolicyTarget {
    return {
        type: CONTAINER,
        name,
        inputs: {
            user: "999:999",
            uploads: [
                upload("/etc/obcms/postgresql.conf", files.conf ?? POSTGRESQL_CONF),
                upload("/etc/obcms/pg_hba.conf", files.hba ?? PG_HBA),
                upload("/etc/obcms/tls/server.key", "-----BEGIN EC PRIVATE KEY-----\n", "0600"),
            ],
            volumes: [{ volumeName: "obcms-database-production-primary-data", containerPath: "/var/lib/postgresql/data" }],
            ports: [],
            ...inputs,
        },
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
        const conf = POSTGRESQL_CONF.replace("hba_file = '/etc/obcms/pg_hba.conf'", "hba_file = '/etc/obcms/hba.conf'");
        expect(await messages(noTrustOrPlaintextAuth, [postgres({ conf })])).toEqual([
            "primary-container: PostgreSQL reads /etc/obcms/hba.conf, which the container does not carry: who may log in cannot be checked",
        ]);
    });

    it("refuses a userlist holding a password instead of a verifier", async () => {
        const userlist = `"obcms_app" "${VERIFIER}"\n"pgbouncer" "Plain-Text-Password-01"\n"old" "md50123456789abcdef0123456789abcdef"\n`;
        expect(await messages(noTrustOrPlaintextAuth, [pgbouncer(PGBOUNCER_INI, userlist)])).toEqual([
            'pgbouncer-container: PgBouncer\'s auth_file /etc/obcms/userlist.txt holds a plain-text password for "pgbouncer", not a SCRAM-SHA-256 or md5 verifier',
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
    /** The primary with the bootstrap SQL the program renders for these roles. */
    function primaryWith(roles: RoleSpec[]): PolicyTarget {
        const sql = renderBootstrapSql({
            superuser: { name: "postgres", verifier: VERIFIER, attributes: [], memberOf: [] },
            roles,
            database: "obcms",
            owner: "obcms_app",
            timezone: "Asia/Manila",
            extensions: [],
        });
        const target = postgres();
        target.inputs.uploads.push(upload("/etc/obcms/bootstrap.sql", sql, "0600"));
        return target;
    }
    const role = (name: string, memberOf: string[], attributes: RoleSpec["attributes"] = []): RoleSpec => ({
        name,
        verifier: VERIFIER,
        attributes,
        memberOf,
    });
    const ini = (admins: string, stats: string) =>
        PGBOUNCER_INI.replace("[pgbouncer]\n", `[pgbouncer]\nadmin_users = ${admins}\nstats_users = ${stats}\n`);

    it("accepts a role that only reads statistics, and separate PgBouncer admin and stats users", async () => {
        const primary = primaryWith([role("obcms_app", []), role("replicator", [], ["REPLICATION"]), role("monitoring", ["pg_monitor"])]);
        expect(await messages(monitoringReadOnly, [primary, pgbouncer(ini("pgbouncer", "monitoring"))])).toEqual([]);
    });

    it("refuses a monitoring role with another role or a power, and a PgBouncer stats user that is an admin", async () => {
        const primary = primaryWith([
            role("monitoring", ["pg_monitor", "pg_write_all_data"], ["REPLICATION"]),
            role("metrics", ["pg_read_all_stats", "obcms_app"]),
        ]);
        expect(await messages(monitoringReadOnly, [primary, pgbouncer(ini("pgbouncer, monitoring", "monitoring"))])).toEqual([
            'primary-container: monitoring role "monitoring" is also granted "pg_write_all_data"',
            'primary-container: monitoring role "monitoring" is given REPLICATION',
            'primary-container: monitoring role "metrics" is also granted "obcms_app"',
            'pgbouncer-container: PgBouncer stats user "monitoring" is also in admin_users: it could PAUSE, KILL or SHUTDOWN the pooler',
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

    it("accepts a password in a private file only", async () => {
        const target = pgbouncer(PGBOUNCER_INI, '"obcms_app" "Generated0Password0Value0000000x"\n');
        expect(await messages(generatedPasswordsNotExposed, [password, target])).toEqual([]);
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
});

describe("slot-wal-bounded", () => {
    it("accepts a bound and refuses -1 or no setting", async () => {
        expect(await messages(slotWalBounded, [postgres()])).toEqual([]);
        const unlimited = POSTGRESQL_CONF.replace("max_slot_wal_keep_size = '2048MB'", "max_slot_wal_keep_size = -1");
        const unset = POSTGRESQL_CONF.replace("max_slot_wal_keep_size = '2048MB'\n", "");
        const message =
            "primary-container: postgresql.conf leaves max_slot_wal_keep_size at -1 (unlimited): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)";
        expect(await messages(slotWalBounded, [postgres({ conf: unlimited }), postgres({ conf: unset })])).toEqual([message, message]);
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
            "primary-container: postgresql.conf does not preload pgaudit (shared_preload_libraries): nothing is audited",
            "primary-container: pgaudit.log = all, -role does not log role (auditLog)",
        ]);
        const none = POSTGRESQL_CONF.replace("pgaudit.log = 'ddl, role'", "pgaudit.log = none");
        expect(await messages(auditLogging, [postgres({ conf: none })])).toEqual([
            "primary-container: pgaudit.log = none does not log ddl, role (auditLog)",
        ]);
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

/** A replica's postgresql.conf: the primary's plus where it streams from. */
function replica(k: number): PolicyTarget {
    const conf =
        POSTGRESQL_CONF.replace("cluster_name = 'primary'", `cluster_name = 'replica_${k}'`) +
        "primary_conninfo = 'host=''primary'' user=replicator'\n";
    return postgres({ conf }, {}, `replica-${k}-container`);
}

describe("minimum-replicas", () => {
    it("counts PostgreSQL servers that stream from a primary", async () => {
        const cluster = [postgres(), replica(1), replica(2), pgbouncer()];
        expect(await messages(minimumReplicas, cluster, { minimumReplicas: 2 })).toEqual([]);
        expect(await messages(minimumReplicas, cluster)).toEqual([
            "the stack runs 2 streaming replica(s); at least 3 are required (replicaCount)",
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
    it("accepts the etcd config the program renders", async () => {
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
});

describe("dcs-quorum", () => {
    it("counts the containers that carry an etcd config", async () => {
        const cluster = [etcdMember(1), postgres(), pgbouncer()];
        expect(await messages(dcsQuorum, cluster, { minimumEtcdMembers: 1 })).toEqual([]);
        expect(await messages(dcsQuorum, cluster)).toEqual(["the stack runs 1 etcd member(s); at least 3 are required (etcdMembers)"]);
        expect(await messages(dcsQuorum, [etcdMember(1), etcdMember(2), etcdMember(3)])).toEqual([]);
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

    it("accepts a Prometheus with alert rules that scrapes every PostgreSQL server", async () => {
        expect(await messages(monitoringEnabled, [postgres(), replica(1), scraping(["primary", "replica_1"])])).toEqual([]);
    });

    it("refuses a stack without Prometheus, without alert rules, or with a server nobody scrapes", async () => {
        expect(await messages(monitoringEnabled, [postgres()])).toEqual([
            "no container runs Prometheus (none carries a prometheus.yml): nothing watches the cluster or raises an alert (monitoringEnabled)",
        ]);
        expect(await messages(monitoringEnabled, [postgres(), replica(1), scraping(["primary"], "[]")])).toEqual([
            "Prometheus loads no alert rules (rule_files is empty): nothing raises an alert",
            'replica-1-container: Prometheus scrapes no exporter for PostgreSQL server "replica_1"',
        ]);
    });
});
