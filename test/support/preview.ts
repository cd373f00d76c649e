// What `pulumi preview` would plan between two declarations of a stack, from
// the resources the program registered under mocks: each provider compares
// the new inputs with the state it holds (provider-model.ts says which input
// changes it applies in place and what it reads back into state).
import { RecordedResource } from "./mocks";
import { changedInputs, changeStep, checkedInputs } from "./provider-model";

export type Step = "create" | "update" | "replace" | "delete";

export interface PlannedStep {
    readonly name: string;
    readonly step: Step;
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
            const changed = changedInputs(was.state, checkedInputs(is.type, is.inputs));
            if (changed.length > 0) {
                steps.push({ name, step: changeStep(is.type, changed) });
            }
        }
    }
    return steps.sort((a, b) => a.name.localeCompare(b.name));
}

/** Names of the planned steps of one kind, sorted. */
export function stepsOf(steps: readonly PlannedStep[], step: Step): string[] {
    return steps.filter((s) => s.step === step).map((s) => s.name);
}
