import type { PolicyConfigSchema, StackValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { CONTAINER, etcdConfig } from "./containers";

interface Config {
    readonly minimumEtcdMembers: number;
}

const configSchema: PolicyConfigSchema = {
    properties: {
        minimumEtcdMembers: {
            type: "integer",
            minimum: 1,
            description: "Fewest etcd members the stack may run (etcdMembers); 3 survive the loss of one.",
            default: 3,
        },
    },
};

export const dcsQuorum: StackValidationPolicy = {
    name: "dcs-quorum",
    description: "The stack runs at least the configured number of etcd members, so the store keeps a quorum when one is lost.",
    enforcementLevel: "mandatory",
    configSchema,
    validateStack: (args, reportViolation) => {
        const { minimumEtcdMembers: minimum } = policyConfig<Config>(configSchema, args);
        const members = args.resources.filter((r) => r.type === CONTAINER && etcdConfig(r.props) !== undefined);
        if (members.length < minimum) {
            reportViolation(`the stack runs ${members.length} etcd member(s); at least ${minimum} are required (etcdMembers)`);
        }
    },
};
