// plan(): the step a preview shows for each resource, from the provider's
// state after the last run and the program's inputs now.
import { describe, expect, it } from "vitest";
import type { RecordedResource } from "../../harness/mocks";
import { plan } from "../../harness/preview";
import { COMMAND, CONTAINER, checkedInputs, IMAGE, NO_OPTIONS, readBack } from "../../harness/provider-model";

function resource(name: string, type: string, inputs: Record<string, any>, custom = true): RecordedResource {
    return { name, type, inputs, rawInputs: inputs, custom, state: readBack(type, checkedInputs(type, inputs)), options: NO_OPTIONS };
}

describe("plan", () => {
    const container = resource("db", CONTAINER, { image: "a", restart: "unless-stopped", uploads: [{ file: "/f", content: "1" }] });

    it("plans nothing for identical inputs", () => {
        expect(plan([container], [resource("db", CONTAINER, { ...container.inputs })])).toEqual([]);
    });

    it("updates a container in place when only inputs without ForceNew change", () => {
        for (const change of [
            { restart: "always", memory: 512 },
            { destroyGraceSeconds: 60 },
            { waitTimeout: 90 },
            { healthcheck: { tests: ["CMD", "true"] } },
        ]) {
            expect(plan([container], [resource("db", CONTAINER, { ...container.inputs, ...change })]), JSON.stringify(change)).toEqual([
                { name: "db", step: "update" },
            ]);
        }
    });

    it("replaces a container when an uploaded file or its stop timeout changes, even alongside an in-place change", () => {
        const after = resource("db", CONTAINER, { ...container.inputs, restart: "always", uploads: [{ file: "/f", content: "2" }] });
        expect(plan([container], [after])).toEqual([{ name: "db", step: "replace" }]);
        expect(plan([container], [resource("db", CONTAINER, { ...container.inputs, stopTimeout: 30 })])).toEqual([
            { name: "db", step: "replace" },
        ]);
    });

    it("refuses a container input the provider model does not classify", () => {
        expect(() => plan([container], [resource("db", CONTAINER, { ...container.inputs, privileged: true })])).toThrow(
            "container input privileged is not modelled",
        );
    });

    it("compares with the health check as the provider read it back: a duration spelled otherwise is a change", () => {
        const healthcheck = { tests: ["CMD", "true"], interval: "2s", startPeriod: "300s", timeout: "5s", retries: 3 };
        const created = resource("db", CONTAINER, { ...container.inputs, healthcheck });
        expect(created.state.healthcheck).toEqual({ ...healthcheck, startPeriod: "5m0s", startInterval: "0s" });
        expect(plan([created], [resource("db", CONTAINER, { ...created.inputs })])).toEqual([{ name: "db", step: "update" }]);
        const canonical = resource("db", CONTAINER, { ...container.inputs, healthcheck: { ...healthcheck, startPeriod: "5m0s" } });
        expect(plan([canonical], [resource("db", CONTAINER, { ...canonical.inputs })])).toEqual([]);
    });

    it("reruns a command in place when its command lines change, and replaces it when its triggers do", () => {
        const slot = resource("slot", COMMAND, { create: "create a", delete: "drop a", triggers: ["1"] });
        expect(plan([slot], [resource("slot", COMMAND, { ...slot.inputs, create: "create b" })])).toEqual([
            { name: "slot", step: "update" },
        ]);
        expect(plan([slot], [resource("slot", COMMAND, { ...slot.inputs, triggers: ["2"] })])).toEqual([{ name: "slot", step: "replace" }]);
    });

    it("replaces a resource named for replacement though nothing changed (`pulumi up --replace`, a certificate due for renewal), and only that one", () => {
        const command = resource("reload", COMMAND, { create: "reload" });
        const declared = () => [resource("db", CONTAINER, { ...container.inputs }), resource("reload", COMMAND, { create: "reload" })];
        expect(plan([container, command], declared(), ["db"])).toEqual([{ name: "db", step: "replace" }]);
        expect(plan([container, command], declared(), ["not-declared"])).toEqual([]);
    });

    it("rebuilds an image in place, whatever changed", () => {
        const image = resource("image", IMAGE, { imageName: "a:1", build: { context: "image" } });
        expect(plan([image], [resource("image", IMAGE, { imageName: "a:2", build: { context: "other" } })])).toEqual([
            { name: "image", step: "update" },
        ]);
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

describe("plan, with what a preview cannot know yet", () => {
    it("changes an input that carries a replaced resource's id (unknown until the replacement exists)", () => {
        const db = resource("db", CONTAINER, { image: "a", uploads: [] });
        const label = resource("label", COMMAND, { create: "docker exec db true", triggers: ["db-id"] });
        const unrelated = resource("other", COMMAND, { create: "true", triggers: ["other-db-id"] });
        expect(plan([db, label, unrelated], [resource("db", CONTAINER, { image: "b", uploads: [] }), label, unrelated])).toEqual([
            { name: "db", step: "replace" },
            { name: "label", step: "replace" },
        ]);
    });

    it("compares values, not the order their keys were written in", () => {
        const a = resource("db", CONTAINER, { image: "a", healthcheck: { tests: ["CMD", "true"], interval: "2s" } });
        const b = resource("db", CONTAINER, { healthcheck: { interval: "2s", tests: ["CMD", "true"] }, image: "a" });
        expect(plan([a], [b])).toEqual([]);
    });
});
