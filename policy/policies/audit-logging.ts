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
        "Every PostgreSQL server preloads pgaudit, and Patroni's dynamic configuration, where the stack keeps pgaudit.log, logs at least the configured statement classes; a server's own files that set pgaudit.log set it so too.",
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
            // Unset here, the dynamic configuration decides: judged on the commands that write it.
            const pgauditLog = parameters.get("pgaudit.log");
            const missing = pgauditLog === undefined ? [] : unlogged(pgauditLog, policyConfig<Config>(configSchema, args).requiredClasses);
            if (missing.length > 0) {
                reportViolation(`pgaudit.log = ${pgauditLog} does not log ${missing.join(", ")} (auditLog)`);
            }
        }),
        validateDynamicConfiguration(({ parameters, where, merges }, args, reportViolation) => {
            const libraries = parameters.get("shared_preload_libraries");
            if (libraries !== undefined && !list(libraries).includes("pgaudit")) {
                reportViolation(`${where} sets shared_preload_libraries = ${libraries}, without pgaudit: nothing is audited`);
            }
            const pgauditLog = parameters.get("pgaudit.log");
            if (pgauditLog === undefined) {
                const unset = merges ? "etcd keeps the value it holds, which the stack does not declare" : "pgaudit's default, none";
                reportViolation(`${where} leaves pgaudit.log unset (${unset}) (auditLog)`);
                return;
            }
            const missing = unlogged(pgauditLog, policyConfig<Config>(configSchema, args).requiredClasses);
            if (missing.length > 0) {
                reportViolation(`${where} sets pgaudit.log = ${pgauditLog}, which does not log ${missing.join(", ")} (auditLog)`);
            }
        }),
    ],
};
