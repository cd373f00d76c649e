import type { ResourceValidationPolicy } from "@pulumi/policy";
import { pgbouncerSettings, postgresqlConf, uploads, validateContainer } from "./containers";

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

export const monitoringReadOnly: ResourceValidationPolicy = {
    name: "monitoring-read-only",
    description:
        "The monitoring roles only read: PgBouncer's stats users are not admin users, and a PostgreSQL role granted pg_monitor (or another statistics role) gets no other role and no power to change data, roles or replication.",
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
        validateContainer((props, _args, reportViolation) => {
            if (postgresqlConf(props) === undefined) {
                return;
            }
            const sql = uploads(props)
                .filter((u) => u.file.endsWith(".sql"))
                .map((u) => u.content ?? "")
                .join("\n");
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
        }),
    ],
};
