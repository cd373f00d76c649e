import * as pulumi from "@pulumi/pulumi";

/** The value an Output resolves to (under mocks every value is known). */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

/** Resolves every Output among a module's exports. */
export async function resolveAll(exports: Record<string, unknown>): Promise<Record<string, unknown>> {
    const entries = await Promise.all(
        Object.entries(exports).map(async ([key, value]) => [
            key,
            pulumi.Output.isInstance(value) ? await promiseOf(value as pulumi.Output<unknown>) : value,
        ]),
    );
    return Object.fromEntries(entries);
}
