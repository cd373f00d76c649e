// What `pulumi preview` would plan between two declarations of a stack, from
// the resources the program registered under mocks and each provider's rule
// for which input changes it can apply in place.
import { RecordedResource } from "./mocks";

export type Step = "create" | "update" | "replace" | "delete";

export interface PlannedStep {
    readonly name: string;
    readonly step: Step;
}

/**
 * Inputs a provider applies to the existing resource; a change to any other
 * input replaces it. Types not listed replace on every change, as bridged
 * providers do for fields marked ForceNew (Docker volumes and networks,
 * random values, TLS keys and certificates all are).
 */
const IN_PLACE_INPUTS: Readonly<Record<string, ReadonlySet<string>>> = {
    // terraform-provider-docker's container Update applies only these through
    // `docker update`, or keeps them on the provider's side; everything else
    // (image, uploads, ports, volumes, user, ...) is ForceNew.
    "docker:index/container:Container": new Set([
        "restart",
        "maxRetryCount",
        "cpuShares",
        "cpuSet",
        "memory",
        "memoryReservation",
        "memorySwap",
        "mustRun",
        "start",
        "wait",
        "waitTimeout",
        "destroyGraceSeconds",
    ]),
    // pulumi-command reruns `create` (no `update` command given) when an
    // input changes; only `triggers` replaces.
    "command:local:Command": new Set(["create", "delete", "update", "environment", "dir", "interpreter", "stdin"]),
};

function changedInputs(before: RecordedResource, after: RecordedResource): string[] {
    const keys = new Set([...Object.keys(before.inputs), ...Object.keys(after.inputs)]);
    return [...keys].filter((key) => JSON.stringify(before.inputs[key]) !== JSON.stringify(after.inputs[key]));
}

/** The steps that take the `before` declaration to the `after` one, by resource name; unchanged resources are left out. */
export function plan(before: readonly RecordedResource[], after: readonly RecordedResource[]): PlannedStep[] {
    const custom = (resources: readonly RecordedResource[]) => new Map(resources.filter((r) => r.custom).map((r) => [r.name, r]));
    const old = custom(before);
    const next = custom(after);
    const steps: PlannedStep[] = [];
    for (const name of new Set([...old.keys(), ...next.keys()])) {
        const was = old.get(name);
        const is = next.get(name);
        if (!was) {
            steps.push({ name, step: "create" });
        } else if (!is) {
            steps.push({ name, step: "delete" });
        } else {
            const changed = changedInputs(was, is);
            if (changed.length > 0) {
                const inPlace = IN_PLACE_INPUTS[is.type] ?? new Set<string>();
                steps.push({ name, step: changed.every((key) => inPlace.has(key)) ? "update" : "replace" });
            }
        }
    }
    return steps.sort((a, b) => a.name.localeCompare(b.name));
}

/** Names of the planned steps of one kind, sorted. */
export function stepsOf(steps: readonly PlannedStep[], step: Step): string[] {
    return steps.filter((s) => s.step === step).map((s) => s.name);
}
