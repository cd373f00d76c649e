// What `pulumi preview` would plan between two declarations of a stack, from
// the resources the program registered under mocks: each provider compares
// the new inputs with the state it holds (provider-model.ts says which input
// changes it applies in place and what it reads back into state).
import { mockId, type RecordedResource } from "./mocks";
import { changedInputs, changeStep, checkedInputs } from "./provider-model";

export type Step = "create" | "update" | "replace" | "delete";

export interface PlannedStep {
    readonly name: string;
    readonly step: Step;
}

/**
 * The steps that take the `before` declaration to the `after` one, by resource
 * name; unchanged resources are left out. `replace` names resources replaced
 * whatever changed, as `pulumi up --replace` does, and as the tls provider
 * does with a certificate within its early-renewal window.
 */
export function plan(
    before: readonly RecordedResource[],
    after: readonly RecordedResource[],
    replace: readonly string[] = [],
): PlannedStep[] {
    const custom = (resources: readonly RecordedResource[]) => new Map(resources.filter((r) => r.custom).map((r) => [r.name, r]));
    const old = custom(before);
    const next = custom(after);
    const steps = new Map<string, Step>();
    for (const name of new Set([...old.keys(), ...next.keys()])) {
        const was = old.get(name);
        const is = next.get(name);
        if (!was) {
            steps.set(name, "create");
        } else if (!is) {
            steps.set(name, "delete");
        } else if (replace.includes(name)) {
            steps.set(name, "replace");
        } else {
            const changed = changedInputs(was.state, checkedInputs(is.type, is.inputs));
            if (changed.length > 0) {
                steps.set(name, changeStep(is.type, changed));
            }
        }
    }
    planUnknownInputs(steps, next);
    return [...steps].map(([name, step]) => ({ name, step })).sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * A replaced resource's outputs are unknown until its replacement exists, so
 * in a real preview an input that carries one (a command's `triggers` with a
 * container's id, say) changes too; repeated until nothing more changes.
 */
function planUnknownInputs(steps: Map<string, Step>, next: ReadonlyMap<string, RecordedResource>): void {
    for (let grew = true; grew; ) {
        grew = false;
        const unknownIds = [...steps].filter(([, step]) => step === "replace").map(([name]) => mockId(name));
        for (const [name, resource] of next) {
            const step = steps.get(name);
            if (step === "create" || step === "replace") {
                continue;
            }
            const carrying = Object.keys(resource.inputs).filter((key) =>
                unknownIds.some((id) => JSON.stringify(resource.inputs[key]).includes(JSON.stringify(id))),
            );
            if (carrying.length > 0) {
                const planned = changeStep(resource.type, carrying);
                if (planned !== step) {
                    steps.set(name, planned === "replace" || step === undefined ? planned : step);
                    grew ||= steps.get(name) !== step;
                }
            }
        }
    }
}

/** Names of the planned steps of one kind, sorted. */
export function stepsOf(steps: readonly PlannedStep[], step: Step): string[] {
    return steps.filter((s) => s.step === step).map((s) => s.name);
}
