import * as pulumi from "@pulumi/pulumi";

/**
 * The outputs the engine records for a program's exports: what the Pulumi
 * CLI does with a Node.js program's module exports, through the SDK's own
 * functions — the root Stack resource takes them (runInPulumiStack) and
 * registers them, serialized (serializeProperties). An export whose value is
 * undefined does not survive that, so `pulumi stack output` does not list it.
 */
export async function registeredStackOutputs(exports: Record<string, unknown>): Promise<Record<string, unknown>> {
    const outputs = await pulumi.runtime.runInPulumiStack(async () => exports);
    return pulumi.runtime.serializeProperties("stack outputs", outputs ?? {});
}
