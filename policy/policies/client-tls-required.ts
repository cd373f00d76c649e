import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { pgbouncerSettings, pgHba, validateContainer } from "./containers";

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
    validateResource: validateContainer((props, args, reportViolation) => {
        const { minimumClientSslmode } = policyConfig<Config>(configSchema, args);
        const minimum = SSLMODES.indexOf(minimumClientSslmode);
        const settings = pgbouncerSettings(props);
        if (settings !== undefined) {
            // PgBouncer's default is disable.
            const mode = settings.get("client_tls_sslmode") ?? "disable";
            if (SSLMODES.indexOf(mode) < minimum) {
                reportViolation(
                    `PgBouncer client_tls_sslmode = ${mode}; clients must use at least ${minimumClientSslmode} (clientTlsSslmode)`,
                );
            }
        }
        const lines = pgHba(props)?.lines;
        if (minimum >= REQUIRE && lines !== undefined) {
            for (const line of lines) {
                if ((line.type === "host" || line.type === "hostnossl") && line.method !== "reject") {
                    reportViolation(
                        `pg_hba.conf line ${line.lineNumber} "${line.text}" accepts network logins without TLS (clientTlsSslmode)`,
                    );
                }
            }
        }
    }),
};
