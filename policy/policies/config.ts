import type { PolicyConfigSchema } from "@pulumi/policy";

/**
 * A policy's configuration: the defaults its schema declares, overlaid with
 * what `--policy-pack-config` sets. The CLI fills the defaults in itself;
 * applying them here too keeps a policy called without the CLI (as the
 * tests do) to the same thresholds.
 */
export function policyConfig<T extends object>(schema: PolicyConfigSchema, args: { getConfig<U extends object>(): U }): T {
    const defaults = Object.fromEntries(
        Object.entries(schema.properties)
            .filter(([, property]) => property.default !== undefined)
            .map(([key, property]) => [key, property.default]),
    );
    return { ...defaults, ...args.getConfig<Partial<T>>() } as T;
}
