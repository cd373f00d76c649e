import type { PolicyConfigSchema, ResourceValidation, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { validateDynamicConfiguration } from "./dynamic-configuration";
import { asObject, validatePostgresServer } from "./patroni";

interface Config {
    /** Fewest replicas that must confirm each commit. */
    readonly minimumSynchronousReplicas: number;
}

const configSchema: PolicyConfigSchema = {
    properties: {
        minimumSynchronousReplicas: {
            type: "integer",
            minimum: 0,
            description:
                "Fewest replicas that must confirm each commit (synchronousReplicas: Patroni's synchronous_mode quorum or on, synchronous_node_count); 0 allows asynchronous replication.",
            default: 1,
        },
    },
};

/** Patroni's reading of a setting as a boolean (patroni/utils.py, parse_bool). */
function parseBool(value: unknown): boolean | undefined {
    const text = String(value).toLowerCase();
    return ["on", "true", "yes", "1"].includes(text) ? true : ["off", "false", "no", "0"].includes(text) ? false : undefined;
}

function requirement(minimum: number): string {
    return `at least ${minimum} replica(s) must confirm each commit (synchronousReplicas)`;
}

/**
 * Why a dynamic configuration lets a commit be acknowledged by fewer than
 * `minimum` replicas, as Patroni 4.0.7 reads it (patroni/global_config.py):
 * synchronous_mode quorum, or true; synchronous_node_count 1 when unset,
 * and at least 1 with synchronous_mode_strict. Undefined when it does not;
 * `unset` says what a configuration without synchronous_mode leaves.
 */
function weakness(dynamic: Record<string, any>, minimum: number, unset: string): string | undefined {
    const mode = dynamic.synchronous_mode;
    if (mode === undefined) {
        return `synchronous_mode is unset: ${unset}; ${requirement(minimum)}`;
    }
    if (String(mode).toLowerCase() !== "quorum" && parseBool(mode) !== true) {
        return `synchronous_mode = ${String(mode)}: a commit is acknowledged before any replica has it, so a failover can lose it; ${requirement(minimum)}`;
    }
    const count = Number.parseInt(String(dynamic.synchronous_node_count ?? 1), 10);
    const confirming = Math.max(Number.isNaN(count) ? 1 : count, parseBool(dynamic.synchronous_mode_strict) === true ? 1 : 0);
    if (confirming < minimum) {
        return `synchronous_node_count = ${confirming}: each commit waits for ${confirming} replica(s); ${requirement(minimum)}`;
    }
    return undefined;
}

/** A check run only when the config asks for synchronous replicas: otherwise it reads nothing, not even a patroni.yml unknown at preview. */
function whenRequired(check: (minimum: number) => ResourceValidation): ResourceValidation {
    return (args, reportViolation) => {
        const { minimumSynchronousReplicas: minimum } = policyConfig<Config>(configSchema, args);
        return minimum > 0 ? check(minimum)(args, reportViolation) : undefined;
    };
}

export const synchronousReplication: ResourceValidationPolicy = {
    name: "synchronous-replication",
    description:
        "Each commit waits for at least the configured number of replicas (Patroni's synchronous_mode quorum or on, synchronous_node_count) wherever the stack declares Patroni's dynamic configuration: the commands that seed it into etcd or apply it (patronictl edit-config), and a member's bootstrap.dcs; so a failover loses no acknowledged commit.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: [
        whenRequired((minimum) =>
            validatePostgresServer(({ config }, _args, reportViolation) => {
                const bootstrap = asObject(config.bootstrap);
                // Without bootstrap.dcs the member takes what the stack seeds into etcd, judged on that command.
                const problem = "dcs" in bootstrap ? weakness(asObject(bootstrap.dcs), minimum, "Patroni's default is off") : undefined;
                if (problem !== undefined) {
                    reportViolation(`patroni.yml: bootstrap.dcs ${problem}`);
                }
            }),
        ),
        whenRequired((minimum) =>
            validateDynamicConfiguration(({ config, where, merges }, _args, reportViolation) => {
                const unset = merges ? "etcd keeps the value it holds, which the stack does not declare" : "Patroni's default is off";
                const problem = weakness(config, minimum, unset);
                if (problem !== undefined) {
                    reportViolation(`${where}: ${problem}`);
                }
            }),
        ),
    ],
};
