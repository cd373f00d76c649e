import type { PolicyConfigSchema, StackValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { CONTAINER, postgresqlConf } from "./containers";

interface Config {
    readonly minimumReplicas: number;
}

const configSchema: PolicyConfigSchema = {
    properties: {
        minimumReplicas: {
            type: "integer",
            minimum: 0,
            description: "Fewest hot-standby replicas the stack may run (replicaCount).",
            default: 3,
        },
    },
};

export const minimumReplicas: StackValidationPolicy = {
    name: "minimum-replicas",
    description:
        "The stack runs at least the configured number of streaming replicas: PostgreSQL servers whose postgresql.conf sets primary_conninfo.",
    enforcementLevel: "mandatory",
    configSchema,
    validateStack: (args, reportViolation) => {
        const { minimumReplicas: minimum } = policyConfig<Config>(configSchema, args);
        const replicas = args.resources.filter(
            (r) => r.type === CONTAINER && (postgresqlConf(r.props)?.get("primary_conninfo") ?? "") !== "",
        );
        if (replicas.length < minimum) {
            reportViolation(`the stack runs ${replicas.length} streaming replica(s); at least ${minimum} are required (replicaCount)`);
        }
    },
};
