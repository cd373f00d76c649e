// The leader's before_stop hook, run by sh as Patroni runs it (its command
// split as shlex does): what it holds, for how long, and what it never holds.
// A stand-in `curl` answers Patroni's `GET /leader`: 200 while leader.ok
// exists, 503 otherwise. The hold on real members is in
// test/integration/failover.test.ts (the switchover's PAUSE comes after the
// demotion starts, and no client sees an error).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FILES } from "../../components/render/paths";
import { renderStopHold, SWITCHOVER_HOLD_DIR, SWITCHOVER_HOLD_SECONDS } from "../../components/render/patroni/switchover-hold";
import { PATRONI_REST_PORT } from "../../components/settings";

describe("the switchover's hold on the leader's stop", () => {
    let root: string;
    let hold: string;

    beforeEach(() => {
        root = mkdtempSync(path.join(tmpdir(), "stop-hold-"));
        hold = path.join(root, "hold");
        writeFileSync(
            path.join(root, "curl"),
            ["#!/bin/sh", `echo "$*" >> "${root}/curl.calls"`, `[ -e "${root}/leader.ok" ] || exit 22`].join("\n"),
            { mode: 0o755 },
        );
        writeFileSync(path.join(root, "leader.ok"), "");
    });

    afterEach(() => rmSync(root, { recursive: true, force: true }));

    /** Runs the hook as Patroni would; resolves with how long it held the stop, in seconds. */
    function runHook(): Promise<number> {
        // The rendered command is `sh -c WORD`: a shell unquotes the word, as shlex does for Patroni.
        const word = renderStopHold(hold).slice("sh -c ".length);
        const started = Date.now();
        return new Promise((resolve, reject) => {
            const child = spawn("sh", ["-c", 'eval "set -- $1"; exec sh -c "$1"', "sh", word], {
                env: { PATH: `${root}:${process.env.PATH}` },
                stdio: "inherit",
            });
            child.on("error", reject);
            child.on("exit", (code) => (code === 0 ? resolve((Date.now() - started) / 1000) : reject(new Error(`exit ${code}`))));
        });
    }

    function arm(validForSeconds: number): void {
        rmSync(hold, { recursive: true, force: true });
        mkdirSync(hold);
        writeFileSync(path.join(hold, "armed"), `${Math.floor(Date.now() / 1000) + validForSeconds}\n`);
    }

    it("renders the program's hold directory and asks the member's own REST API with the stack's CA", () => {
        const command = renderStopHold();
        expect(command.startsWith("sh -c '")).toBe(true);
        expect(command).toContain(SWITCHOVER_HOLD_DIR);
        expect(command).toContain(`--cacert '\\''${FILES.tlsCa}'\\''`);
        expect(command).toContain(`https://localhost:${PATRONI_REST_PORT}/leader`);
    });

    it("holds nothing on a stop no switchover armed: every other stop", async () => {
        expect(await runHook()).toBeLessThan(0.5);
        expect(existsSync(path.join(hold, "stopping"))).toBe(false);
        expect(existsSync(path.join(root, "curl.calls"))).toBe(false);
    });

    it("holds nothing once the arming has lapsed (cluster.sh gave up before Patroni stopped anything)", async () => {
        arm(-2);
        expect(await runHook()).toBeLessThan(0.5);
        expect(existsSync(path.join(hold, "stopping"))).toBe(false);
    });

    it("says it is stopping and holds the stop until the pools are paused, then clears the arming", async () => {
        arm(60);
        const held = runHook();
        // Awaited below, after the waits: a hook that exits early must fail this test, not the run.
        held.catch(() => undefined);
        const stopping = path.join(hold, "stopping");
        for (let i = 0; i < 100 && !existsSync(stopping); i++) await new Promise((r) => setTimeout(r, 20));
        expect(existsSync(stopping)).toBe(true);
        await new Promise((r) => setTimeout(r, 700));
        writeFileSync(path.join(hold, "paused"), "");
        const seconds = await held;
        expect(seconds).toBeGreaterThanOrEqual(0.7);
        expect(seconds).toBeLessThan(2);
        expect(existsSync(hold)).toBe(false);
        // It asked whether it still leads, with the stack's CA.
        expect(readFileSync(path.join(root, "curl.calls"), "utf8").split("\n")[0]).toBe(
            `-fs --max-time 1 --cacert ${FILES.tlsCa} -o /dev/null https://localhost:${PATRONI_REST_PORT}/leader`,
        );
    });

    it("stops at once, armed or not, when the member no longer holds the leader key: a leader being fenced is never held", async () => {
        arm(60);
        rmSync(path.join(root, "leader.ok"));
        expect(await runHook()).toBeLessThan(0.5);
        expect(existsSync(hold)).toBe(false);
    });

    it("lets the stop go after SWITCHOVER_HOLD_SECONDS if the pools never pause", async () => {
        arm(60);
        const seconds = await runHook();
        // Whole seconds by the clock: between one second less and a little more.
        expect(seconds).toBeGreaterThan(SWITCHOVER_HOLD_SECONDS - 1);
        expect(seconds).toBeLessThan(SWITCHOVER_HOLD_SECONDS + 1);
        expect(existsSync(hold)).toBe(false);
    }, 15_000);
});
