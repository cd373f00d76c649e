import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { postgresqlConf, validateContainer } from "./containers";

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

export const auditLogging: ResourceValidationPolicy = {
    name: "audit-logging",
    description: "Every PostgreSQL server preloads pgaudit and logs at least the configured statement classes (pgaudit.log).",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: validateContainer((props, args, reportViolation) => {
        const conf = postgresqlConf(props);
        if (conf === undefined) {
            return;
        }
        if (!list(conf.get("shared_preload_libraries")).includes("pgaudit")) {
            reportViolation("postgresql.conf does not preload pgaudit (shared_preload_libraries): nothing is audited");
            return;
        }
        const { requiredClasses } = policyConfig<Config>(configSchema, args);
        const classes = list(conf.get("pgaudit.log"));
        const logged = (c: string) => !classes.includes(`-${c}`) && (classes.includes(c) || classes.includes("all"));
        const missing = requiredClasses.filter((c) => !logged(c));
        if (missing.length > 0) {
            reportViolation(`pgaudit.log = ${conf.get("pgaudit.log") ?? "none"} does not log ${missing.join(", ")} (auditLog)`);
        }
    }),
};
