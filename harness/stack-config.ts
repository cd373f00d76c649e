// Stack config exactly as the Pulumi CLI hands it to the program: the project
// defaults declared in Pulumi.yaml, overridden by Pulumi.<stack>.yaml, then by
// the test's own overrides. Keys come back namespaced (`obcms-database:key`).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export type StackName = "staging" | "production";

export const PROJECT_ROOT = path.resolve(__dirname, "..");

interface ProjectFile {
    name: string;
    config: Record<string, { default?: unknown }>;
}

function toConfigString(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

export function projectName(): string {
    return (parse(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as ProjectFile).name;
}

export function loadStackConfig(stack: StackName, overrides: Record<string, unknown> = {}): Record<string, string> {
    const project = parse(readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as ProjectFile;
    const stackFile = parse(readFileSync(path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
        config?: Record<string, unknown>;
    };
    const config: Record<string, string> = {};
    for (const [key, schema] of Object.entries(project.config)) {
        if (schema.default !== undefined) {
            config[`${project.name}:${key}`] = toConfigString(schema.default);
        }
    }
    for (const [key, value] of Object.entries(stackFile.config ?? {})) {
        config[key.includes(":") ? key : `${project.name}:${key}`] = toConfigString(value);
    }
    for (const [key, value] of Object.entries(overrides)) {
        config[`${project.name}:${key}`] = toConfigString(value);
    }
    return config;
}
