// What the engine answers a StackReference with: the referenced stack's
// outputs and which of them are secret, so `requireOutput` keeps a secret a secret.
import * as pulumi from "@pulumi/pulumi";
import type { RecordedOptions } from "../../harness/provider-model";
import { isOptionsRecorder, type OptionsRecorder } from "../../harness/resource-options";

export interface ReferencedStack {
    /** Output values, resolved. */
    readonly outputs: Record<string, unknown>;
    /** Names of the outputs the referenced stack keeps secret. */
    readonly secretOutputNames: readonly string[];
}

/** The names of a program's exports that are secret Outputs. */
export async function secretOutputNames(exports: Record<string, unknown>): Promise<string[]> {
    const flags = await Promise.all(
        Object.entries(exports).map(async ([key, value]) =>
            pulumi.Output.isInstance(value) && (await pulumi.isSecret(value)) ? key : undefined,
        ),
    );
    return flags.filter((key): key is string => key !== undefined).sort();
}

type MockResourceResult = ReturnType<pulumi.runtime.Mocks["newResource"]>;

/**
 * Mocks that answer `pulumi:pulumi:StackReference` reads from `stacks` (by
 * fully qualified stack name) and hand every other resource to `inner`.
 */
export class StackReferenceMocks implements pulumi.runtime.Mocks, OptionsRecorder {
    constructor(
        private readonly inner: pulumi.runtime.Mocks,
        private readonly stacks: Readonly<Record<string, ReferencedStack>>,
    ) {}

    recordOptions(name: string, options: RecordedOptions): void {
        if (isOptionsRecorder(this.inner)) {
            this.inner.recordOptions(name, options);
        }
    }

    newResource(args: pulumi.runtime.MockResourceArgs): MockResourceResult {
        if (args.type !== "pulumi:pulumi:StackReference") {
            return this.inner.newResource(args);
        }
        const name: string = args.inputs.name;
        const stack = this.stacks[name];
        if (stack === undefined) {
            throw new Error(`no stack named ${name} to reference`);
        }
        return { id: name, state: { name, outputs: stack.outputs, secretOutputNames: [...stack.secretOutputNames] } };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> | Promise<Record<string, any>> {
        return this.inner.call(args);
    }
}
