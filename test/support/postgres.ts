// PostgreSQL 17 in the project image, for checks of the SQL the program renders against a real server.
import { spawnSync } from "node:child_process";
import { shellWord } from "../../components/render/escape";
import { BIN_DIR } from "../../components/render/patroni/patroni-yml";
import { PROJECT_IMAGE } from "./promtool";

/**
 * Starts PostgreSQL 17 in the project image with `options` (postgres -c …),
 * then runs `lines` of shell (psql over /tmp); returns exit status, stdout, stderr.
 */
export function onPostgres(options: string, lines: readonly string[]): [number | null, string, string] {
    const script = [
        "set -e",
        `export PATH=${BIN_DIR}:$PATH`,
        "initdb -D /tmp/pg -U postgres -A trust >/dev/null",
        `pg_ctl -D /tmp/pg -l /tmp/pg.log -w -o "-k /tmp -c listen_addresses= ${options}" start >/dev/null`,
        ...lines,
    ].join("\n");
    const run = spawnSync(
        "docker",
        ["run", "--rm", "--network", "none", "--user", "postgres", "--entrypoint", "sh", PROJECT_IMAGE, "-c", script],
        {
            encoding: "utf8",
        },
    );
    return [run.status, run.stdout, run.stderr];
}

/** psql printing the bare value of `sql`. */
export const psqlValue = (sql: string) => `psql -X -A -t -h /tmp -d postgres -c ${shellWord(sql)}`;
