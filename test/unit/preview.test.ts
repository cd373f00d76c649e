// plan(): the step a preview shows for each resource, from its inputs before and after.
import { describe, expect, it } from "vitest";
import { RecordedResource } from "../support/mocks";
import { plan } from "../support/preview";

const CONTAINER = "docker:index/container:Container";
const COMMAND = "command:local:Command";

function resource(name: string, type: string, inputs: Record<string, unknown>, custom = true): RecordedResource {
    return { name, type, inputs, rawInputs: inputs, custom };
}

describe("plan", () => {
    const container = resource("db", CONTAINER, { image: "a", restart: "unless-stopped", uploads: [{ file: "/f", content: "1" }] });

    it("plans nothing for identical inputs", () => {
        expect(plan([container], [resource("db", CONTAINER, { ...container.inputs })])).toEqual([]);
    });

    it("updates a container in place when only inputs `docker update` applies change", () => {
        expect(plan([container], [resource("db", CONTAINER, { ...container.inputs, restart: "always", memory: 512 })])).toEqual([
            { name: "db", step: "update" },
        ]);
    });

    it("replaces a container when an uploaded file changes, even alongside an in-place change", () => {
        const after = resource("db", CONTAINER, { ...container.inputs, restart: "always", uploads: [{ file: "/f", content: "2" }] });
        expect(plan([container], [after])).toEqual([{ name: "db", step: "replace" }]);
    });

    it("reruns a command in place when its command lines change, and replaces it when its triggers do", () => {
        const slot = resource("slot", COMMAND, { create: "create a", delete: "drop a", triggers: ["1"] });
        expect(plan([slot], [resource("slot", COMMAND, { ...slot.inputs, create: "create b" })])).toEqual([{ name: "slot", step: "update" }]);
        expect(plan([slot], [resource("slot", COMMAND, { ...slot.inputs, triggers: ["2"] })])).toEqual([{ name: "slot", step: "replace" }]);
    });

    it("replaces any other type on any change, creates new names, deletes gone ones, and ignores components", () => {
        const volume = resource("data", "docker:index/volume:Volume", { name: "v1" });
        const component = (inputs: Record<string, unknown>) => resource("primary", "obcms:database:Primary", inputs, false);
        expect(
            plan(
                [volume, resource("old", "random:index/randomPassword:RandomPassword", { length: 32 }), component({ a: 1 })],
                [resource("data", "docker:index/volume:Volume", { name: "v2" }), resource("new", CONTAINER, {}), component({ a: 2 })],
            ),
        ).toEqual([
            { name: "data", step: "replace" },
            { name: "new", step: "create" },
            { name: "old", step: "delete" },
        ]);
    });
});
