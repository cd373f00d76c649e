// Which resources each typical config change touches: the preview a reviewer
// reads, planned from what the program declares before and after the change.

import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { type RecordedResource, RecordingMocks } from "../../harness/mocks";
import { promiseOf } from "../../harness/outputs";
import { plan } from "../../harness/preview";
import { runProgram } from "../../harness/program";
import { CHANGE_IMPACTS, expectedSteps, renderChangeImpactTable } from "../support/change-impact";

async function declared(
    overrides: Record<string, unknown>,
    secretKeys: readonly string[] = [],
    renewed: readonly string[] = [],
): Promise<RecordedResource[]> {
    const mocks = new RecordingMocks(renewed);
    const { exports } = await runProgram({ stack: "production", overrides, secretKeys, mocks });
    // Every output resolves only once all resources are registered.
    await Promise.all(
        Object.values(exports)
            .filter(pulumi.Output.isInstance)
            .map((o) => promiseOf(o as pulumi.Output<unknown>)),
    );
    return mocks.resources;
}

describe("what a config change does to the production stack", () => {
    it.each(CHANGE_IMPACTS.map((impact) => [impact.change, impact] as const))("%s", async (_, impact) => {
        const before = await declared(impact.before, impact.secretKeys);
        // A renewed certificate is a new one: its dependents see its new PEM.
        const after = await declared(impact.after, impact.secretKeys, impact.renewed);
        expect(plan(before, after, impact.renewed)).toEqual(expectedSteps(impact));
    });

    it("is the table README.md shows (regenerate it with `npm run docs`)", () => {
        const readme = readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
        const block = readme.match(/<!-- change-impact:start -->\n([\s\S]*?)<!-- change-impact:end -->/);
        expect(block?.[1]).toBe(renderChangeImpactTable(CHANGE_IMPACTS));
    });
});
