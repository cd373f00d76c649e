import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { validateDynamicConfiguration } from "./dynamic-configuration";
import { validatePostgresServer } from "./patroni";

interface Config {
    /** pgaudit classes every PostgreSQL server must log. */
    readonly requiredClasses: string[];
}

const configSchema: PolicyConfigSchema = {
    properties: {
        requiredClasses: {
            type: "array",
            items: { type: "string", enum: ["read", "write", "function", "role", "ddl", "misc", "misc_set"] },
            description: "pgaudit session classes (pgaudit.log, config auditLog) every PostgreSQL server must log.",
            default: ["ddl", "role"],
        },
    },
};

function list(value: string | undefined): string[] {
    return (value ?? "")
        .split(",")
        .map((item) => item.trim().toLowerCase())
        .filter((item) => item !== "");
}

/** The required classes a pgaudit.log value does not log. */
function unlogged(pgauditLog: string | undefined, requiredClasses: readonly string[]): string[] {
    const classes = list(pgauditLog);
    const logged = (c: string) => !classes.includes(`-${c}`) && (classes.includes(c) || classes.includes("all"));
    return requiredClasses.filter((c) => !logged(c));
}

export const auditLogging: ResourceValidationPolicy = {
    name: "audit-logging",
    description:
        "Every PostgreSQL server preloads pgaudit and logs at least the configured statement classes (pgaudit.log), and Patroni's dynamic configuration sets neither against it.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: [
        validatePostgresServer(({ parameters }, args, reportViolation) => {
            if (!list(parameters.get("shared_preload_libraries")).includes("pgaudit")) {
                reportViolation(
                    "postgresql.conf and Patroni's parameters do not preload pgaudit (shared_preload_libraries): nothing is audited",
                );
                return;
            }
            const missing = unlogged(parameters.get("pgaudit.log"), policyConfig<Config>(configSchema, args).requiredClasses);
            if (missing.length > 0) {
                reportViolation(`pgaudit.log = ${parameters.get("pgaudit.log") ?? "none"} does not log ${missing.join(", ")} (auditLog)`);
            }
        }),
        // What it leaves unset, each member's own files decide.
        validateDynamicConfiguration(({ parameters, where }, args, reportViolation) => {
            const libraries = parameters.get("shared_preload_libraries");
            if (libraries !== undefined && !list(libraries).includes("pgaudit")) {
                reportViolation(`${where} sets shared_preload_libraries = ${libraries}, without pgaudit: nothing is audited`);
            }
            const pgauditLog = parameters.get("pgaudit.log");
            const missing = pgauditLog === undefined ? [] : unlogged(pgauditLog, policyConfig<Config>(configSchema, args).requiredClasses);
            if (missing.length > 0) {
                reportViolation(`${where} sets pgaudit.log = ${pgauditLog}, which does not log ${missing.join(", ")} (auditLog)`);
            }
        }),
    ],
};
