// The README's config table is what users read; it must say what Pulumi.yaml declares.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../harness/stack-config";

it("documents every key of Pulumi.yaml with its default, and no other key", () => {
    const project = parse(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as {
        config: Record<string, { default: unknown }>;
    };
    const readme = readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Outputs"));
    const rows = [...section.matchAll(/^\| `(\w+)` \| `([^`]*)` \|/gm)].map(([, key, value]) => [key, value]);
    const declared = Object.entries(project.config).map(([key, schema]) => [key, schema.default === "" ? '""' : String(schema.default)]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(declared));
});
