import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { CONTAINER, LOCAL_COMMAND, pgbouncerSettings, uploads, validateContainer } from "./containers";
import { carriesPatroniConf } from "./patroni";

/** PostgreSQL's predefined roles that only read statistics and settings. */
const MONITORING_ROLES = new Set(["pg_monitor", "pg_read_all_settings", "pg_read_all_stats", "pg_stat_scan_tables"]);
/** Role attributes that let a role change data, roles or replication. */
const POWERS = ["SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS"];

/** A quoted or bare SQL identifier, unquoted. */
const IDENTIFIER = `("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)`;
const unquote = (name: string) => (name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name);

function list(value: string | undefined): string[] {
    return (value ?? "")
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "");
}

/** The SQL that sets up roles: files a PostgreSQL server carries, or what a command pipes into psql; undefined for other resources. */
function roleSql(args: ResourceValidationArgs): string | undefined {
    if (args.type === CONTAINER && carriesPatroniConf(args.props)) {
        return uploads(args.props)
            .filter((u) => u.file.endsWith(".sql"))
            .map((u) => u.content ?? "")
            .join("\n");
    }
    if (args.type === LOCAL_COMMAND && /\bpsql\b/.test(String(args.props.create ?? ""))) {
        return String(args.props.stdin ?? "");
    }
    return undefined;
}

export const monitoringReadOnly: ResourceValidationPolicy = {
    name: "monitoring-read-only",
    description:
        "The monitoring roles only read: PgBouncer's stats users are not admin users, and a PostgreSQL role granted pg_monitor (or another statistics role), in the SQL a server carries or a command runs through psql, gets no other role and no power to change data, roles or replication.",
    enforcementLevel: "mandatory",
    // Two checks: PgBouncer's is known at preview; the SQL that sets up the
    // roles holds password verifiers, so at a first preview it is unknown.
    validateResource: [
        validateContainer((props, _args, reportViolation) => {
            const settings = pgbouncerSettings(props);
            const admins = new Set(list(settings?.get("admin_users")));
            for (const user of list(settings?.get("stats_users")).filter((u) => admins.has(u))) {
                reportViolation(`PgBouncer stats user "${user}" is also in admin_users: it could PAUSE, KILL or SHUTDOWN the pooler`);
            }
        }),
        (args, reportViolation) => {
            const sql = roleSql(args);
            if (sql === undefined) {
                return;
            }
            const grants = [...sql.matchAll(new RegExp(`GRANT ${IDENTIFIER} TO ${IDENTIFIER}`, "gi"))].map((m) => ({
                group: unquote(m[1]),
                role: unquote(m[2]),
            }));
            const monitors = new Set(grants.filter((g) => MONITORING_ROLES.has(g.group)).map((g) => g.role));
            for (const role of monitors) {
                for (const grant of grants.filter((g) => g.role === role && !MONITORING_ROLES.has(g.group))) {
                    reportViolation(`monitoring role "${role}" is also granted "${grant.group}"`);
                }
                for (const statement of sql.matchAll(new RegExp(`(?:CREATE|ALTER) ROLE ${IDENTIFIER}([^;]*)`, "gi"))) {
                    const attributes = statement[2]
                        .replace(/PASSWORD\s+'(?:[^']|'')*'/gi, "")
                        .toUpperCase()
                        .split(/\s+/);
                    const powers = POWERS.filter((p) => attributes.includes(p));
                    if (unquote(statement[1]) === role && powers.length > 0) {
                        reportViolation(`monitoring role "${role}" is given ${powers.join(", ")}`);
                    }
                }
            }
        },
    ],
};
