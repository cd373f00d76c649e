import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { pgbouncerSettings, validateContainer } from "./containers";
import { validatePostgresServer } from "./patroni";

/** PgBouncer's client_tls_sslmode values, weakest first. */
const SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
const REQUIRE = SSLMODES.indexOf("require");

interface Config {
    /** The weakest client_tls_sslmode PgBouncer may run with. */
    readonly minimumClientSslmode: string;
}

const configSchema: PolicyConfigSchema = {
    properties: {
        minimumClientSslmode: {
            type: "string",
            enum: SSLMODES,
            description:
                "Weakest PgBouncer client_tls_sslmode allowed (clientTlsSslmode); from require on, PostgreSQL must also refuse network logins without TLS.",
            default: "require",
        },
    },
};

export const clientTlsRequired: ResourceValidationPolicy = {
    name: "client-tls-required",
    description:
        "Clients reach PgBouncer with at least the configured client_tls_sslmode; when TLS is required, PostgreSQL's pg_hba.conf accepts network logins over TLS only.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: [
        validateContainer((props, args, reportViolation) => {
            const settings = pgbouncerSettings(props);
            if (settings === undefined) {
                return;
            }
            const { minimumClientSslmode } = policyConfig<Config>(configSchema, args);
            // PgBouncer's default is disable.
            const mode = settings.get("client_tls_sslmode") ?? "disable";
            if (SSLMODES.indexOf(mode) < SSLMODES.indexOf(minimumClientSslmode)) {
                reportViolation(
                    `PgBouncer client_tls_sslmode = ${mode}; clients must use at least ${minimumClientSslmode} (clientTlsSslmode)`,
                );
            }
        }),
        // Apart: at a first preview patroni.yml, which holds passwords, is unknown, and PgBouncer's check still runs.
        validatePostgresServer(({ hba }, args, reportViolation) => {
            const { minimumClientSslmode } = policyConfig<Config>(configSchema, args);
            if (SSLMODES.indexOf(minimumClientSslmode) < REQUIRE) {
                return;
            }
            for (const line of hba.lines ?? []) {
                if ((line.type === "host" || line.type === "hostnossl") && line.method !== "reject") {
                    reportViolation(
                        `pg_hba.conf line ${line.lineNumber} "${line.text}" accepts network logins without TLS (clientTlsSslmode)`,
                    );
                }
            }
        }),
    ],
};
