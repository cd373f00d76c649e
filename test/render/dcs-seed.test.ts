// The DCS seed, run by /bin/sh with `docker` replaced by a shell function
// that answers as an etcd cluster would: which members answer, and whether
// the config key already holds a value. It must write the dynamic
// configuration once, never over a running cluster's, and retry while no
// member answers.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { localEtcdctl } from "../../components/render/etcd/start-script";
import { dynamicConfigKey, SEED_ATTEMPTS, seedDynamicConfigCommand } from "../../components/render/patroni/dcs-seed";
import { clusterTopology } from "../../components/topology";
import { production, shellSyntaxCheck } from "./fixtures";

const t = clusterTopology(production);
const SEED = seedDynamicConfigCommand(t.etcd, t.scope);
const CONFIG = '{"ttl":20,"loop_wait":5}';

/**
 * `docker exec -i <member> sh -c <etcdctl ...>`: members listed in $DIR/down
 * fail; `get` prints $DIR/value; `put` stores its stdin there. Every call
 * is logged to $DIR/calls as "<member> <get|put>".
 */
const FAKE_DOCKER = `
sleep() { :; }
docker() {
  member="$3"; command="$6"
  case "$command" in *" get "*) verb=get ;; *" put "*) verb=put ;; *) return 99 ;; esac
  echo "$member $verb" >> "$DIR/calls"
  printf '%s\n' "$command" >> "$DIR/commands"
  if grep -qx "$member" "$DIR/down"; then cat > /dev/null; return 1; fi
  if [ "$verb" = get ]; then cat "$DIR/value"; else cat > "$DIR/value"; fi
}
`;

function seed(existing: string, down: readonly string[]) {
    const dir = mkdtempSync(path.join(tmpdir(), "obcms-seed-"));
    try {
        writeFileSync(path.join(dir, "value"), existing);
        writeFileSync(path.join(dir, "down"), down.map((m) => `${m}\n`).join(""));
        writeFileSync(path.join(dir, "calls"), "");
        writeFileSync(path.join(dir, "commands"), "");
        const result = spawnSync("/bin/sh", ["-c", `${FAKE_DOCKER}\n${SEED}`], {
            encoding: "utf8",
            input: CONFIG,
            env: { ...process.env, DIR: dir },
        });
        return {
            status: result.status,
            stderr: result.stderr,
            value: readFileSync(path.join(dir, "value"), "utf8"),
            calls: readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n").filter(Boolean),
            /** The shell command each call ran in the member's container. */
            commands: readFileSync(path.join(dir, "commands"), "utf8").trim().split("\n").filter(Boolean),
        };
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
}

describe("the DCS seed", () => {
    it("writes the configuration through the first member when the key is empty, with etcdctl on Patroni's config key", () => {
        expect(dynamicConfigKey(t.scope)).toBe("/service/obcms-database-production/config");
        expect(shellSyntaxCheck(SEED)).toEqual({ status: 0, stderr: "" });
        const result = seed("", []);
        const etcdctl = [...localEtcdctl(), "--command-timeout=5s"].join(" ");
        expect(result.commands).toEqual([
            `${etcdctl} get '/service/obcms-database-production/config' --print-value-only`,
            `${etcdctl} put '/service/obcms-database-production/config'`,
        ]);
        expect(result.status).toBe(0);
        expect(result.value).toBe(CONFIG);
        expect(result.calls).toEqual([`${t.etcd[0].container} get`, `${t.etcd[0].container} put`]);
    });

    it("leaves a running cluster's configuration as it is", () => {
        const running = '{"ttl":30,"pause":true}';
        const result = seed(running, []);
        expect(result.status).toBe(0);
        expect(result.value).toBe(running);
        expect(result.calls).toEqual([`${t.etcd[0].container} get`]);
    });

    it("goes on to the next member when one does not answer", () => {
        const result = seed("", [t.etcd[0].container]);
        expect(result.status).toBe(0);
        expect(result.value).toBe(CONFIG);
        expect(result.calls).toEqual([`${t.etcd[0].container} get`, `${t.etcd[1].container} get`, `${t.etcd[1].container} put`]);
    });

    it(`fails, saying so, after ${SEED_ATTEMPTS} rounds in which no member answered`, () => {
        const result = seed(
            "",
            t.etcd.map((e) => e.container),
        );
        expect(result.status).toBe(1);
        expect(result.stderr).toBe(`no etcd member took the dynamic configuration after ${SEED_ATTEMPTS} attempts\n`);
        expect(result.calls).toHaveLength(SEED_ATTEMPTS * t.etcd.length);
        expect(result.value).toBe("");
    });
});
