import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { RANDOM_PASSWORD } from "./containers";

interface Config {
    readonly minimumLength: number;
}

const configSchema: PolicyConfigSchema = {
    properties: {
        minimumLength: {
            type: "integer",
            minimum: 1,
            description: "Fewest characters a generated password may have (the runbook's 16).",
            default: 16,
        },
    },
};

export const strongGeneratedPasswords: ResourceValidationPolicy = {
    name: "strong-generated-passwords",
    description: "Every password the stack generates (random.RandomPassword) has at least the configured length.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: (args, reportViolation) => {
        if (args.type !== RANDOM_PASSWORD) {
            return;
        }
        const { minimumLength } = policyConfig<Config>(configSchema, args);
        const length: number = args.props.length;
        if (length < minimumLength) {
            reportViolation(`generates ${length}-character passwords; at least ${minimumLength} are required`);
        }
    },
};
