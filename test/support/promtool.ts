// promtool from the project image, on rendered files: config and rule
// checks, rule unit tests, metric lints.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
/** The harness's tag for the image built from image/Dockerfile. */
export const PROJECT_IMAGE = "obcms-database:17";
/** Where the rendered files sit in the container, as in the Prometheus container. */
export const PROMTOOL_DIR = "/etc/obcms";

export interface PromtoolResult {
    readonly code: number;
    readonly output: string;
}

/** Runs promtool on `files`, written to a fresh directory mounted read-only at PROMTOOL_DIR, without network. */
export async function promtool(files: Record<string, string>, ...args: string[]): Promise<PromtoolResult> {
    const dir = mkdtempSync(path.join(tmpdir(), "obcms-promtool-"));
    try {
        for (const [name, content] of Object.entries(files)) {
            writeFileSync(path.join(dir, name), content);
        }
        const { stdout, stderr } = await run("docker", [
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            `${dir}:${PROMTOOL_DIR}:ro`,
            PROJECT_IMAGE,
            "promtool",
            ...args,
        ]);
        return { code: 0, output: stdout + stderr };
    } catch (error) {
        const e = error as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}
