// The README's config table is what users read; it must say what Pulumi.yaml declares.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { parse } from "yaml";
import { MAX_CLIENT_CONN, MAX_POOLED_SERVER_CONNECTIONS } from "../../components/settings";
import { PROJECT_ROOT } from "../../harness/stack-config";

it("documents every key of Pulumi.yaml with its default, and no other key", () => {
    const project = parse(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as {
        config: Record<string, { default: unknown }>;
    };
    const readme = readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Outputs"));
    const rows = [...section.matchAll(/^\| `(\w+)` \| `([^`]*)` \|/gm)].map(([, key, value]) => [key, value]);
    const spelled = (value: unknown) => (value === "" ? '""' : typeof value === "object" ? JSON.stringify(value) : String(value));
    const declared = Object.entries(project.config).map(([key, schema]) => [key, spelled(schema.default)]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(declared));
});

it("states the client limit and the pool's bound that validation enforces, in Pulumi.yaml and the README alike", () => {
    const project = parse(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as {
        config: Record<string, { description: string }>;
    };
    const readme = readFileSync(path.join(PROJECT_ROOT, "README.md"), "utf8");
    const atMost = (text: string) => [...text.matchAll(/at most (\d+)/g)].map(([, n]) => Number(n));
    const row = (key: string) => readme.split("\n").find((line) => line.startsWith(`| \`${key}\` |`)) ?? "";
    expect(atMost(project.config.maxClientConn.description)).toEqual([MAX_CLIENT_CONN]);
    expect(atMost(project.config.defaultPoolSize.description)).toEqual([MAX_POOLED_SERVER_CONNECTIONS]);
    expect(atMost(row("maxClientConn"))).toEqual([MAX_CLIENT_CONN]);
    expect(atMost(row("defaultPoolSize"))).toEqual([MAX_POOLED_SERVER_CONNECTIONS]);
    // The prose: what PgBouncer's fixed limits bound, and what validation refuses.
    const prose = readme.replace(/\s+/g, " ");
    const bound = /`maxClientConn` at (\d+) and the pool plus its reserve at (\d+)\./.exec(prose);
    const refused = /`maxClientConn` below the pool plus its reserve or above (\d+), the pool plus its reserve above (\d+),/.exec(prose);
    for (const found of [bound, refused]) {
        expect(found?.slice(1).map(Number)).toEqual([MAX_CLIENT_CONN, MAX_POOLED_SERVER_CONNECTIONS]);
    }
});
