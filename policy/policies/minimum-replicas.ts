import type { PolicyConfigSchema, StackValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { CONTAINER } from "./containers";
import { carriesPatroniConf } from "./patroni";

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
        "The stack runs at least the configured number of streaming replicas: the PostgreSQL servers Patroni runs (containers carrying a patroni.yml) but the one that leads.",
    enforcementLevel: "mandatory",
    configSchema,
    validateStack: (args, reportViolation) => {
        const { minimumReplicas: minimum } = policyConfig<Config>(configSchema, args);
        // By the files' names, known at a first preview, unlike patroni.yml's contents.
        const members = args.resources.filter((r) => r.type === CONTAINER && carriesPatroniConf(r.props)).length;
        const replicas = Math.max(members - 1, 0);
        if (replicas < minimum) {
            reportViolation(`the stack runs ${replicas} streaming replica(s); at least ${minimum} are required (replicaCount)`);
        }
    },
};
