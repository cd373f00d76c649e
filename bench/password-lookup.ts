// npm run bench:password-lookup [-- --seconds N --rounds N --clients N]
//
// How PgBouncer should learn the application role's password, measured in one
// run on the staging stack: from its userlist, which the stack uses (a
// rotation RELOADs it), or by `auth_query`, asking PostgreSQL for the verifier
// at each login. Two PgBouncers, started inside the stack's PgBouncer
// container from the stack's own pgbouncer.ini, listen beside it: one as it
// is, one with the app role's userlist entry replaced by `auth_user` and
// `auth_query`. pgbench logs in, runs `SELECT 1` and logs out (-C) through each in
// alternating rounds, so both see the same machine at the same time. Prints
// the mean connection time and the rate of such sessions per round and overall.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { FILES, PGBOUNCER_USERLIST_FILE } from "../components/render/paths";
import { PGBOUNCER_PORT } from "../components/settings";
import { type StartedStack, startStack } from "../harness/cluster";
import { waitForHealthyCluster, waitForLeader } from "../harness/patroni";
import { docker, query } from "../harness/sql";
import { runOnClusterNetwork } from "../harness/workload";
import { parseSummary } from "./pgbench";
import { importProgramFresh } from "./program-import";
import { distribution } from "./stats";

const AUTH_USER = "bench_pgbouncer_auth";
const LOOKUP = "public.bench_pgbouncer_lookup";

interface Round {
    readonly lookup: Lookup;
    readonly averageConnectionMs: number;
    readonly sessionsPerSecond: number;
    readonly sessions: number;
    readonly failed: number;
}

/** The lookup function auth_query calls, owned by the superuser; only AUTH_USER may run it. */
function lookupFunctionSql(authPassword: string): string[] {
    return [
        `CREATE ROLE ${AUTH_USER} LOGIN PASSWORD '${authPassword}'`,
        `CREATE FUNCTION ${LOOKUP}(p_user text, OUT uname text, OUT phash text) RETURNS record LANGUAGE sql SECURITY DEFINER
           SET search_path = pg_catalog AS $$ SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = p_user AND rolcanlogin $$`,
        `REVOKE ALL ON FUNCTION ${LOOKUP}(text) FROM PUBLIC`,
        `GRANT EXECUTE ON FUNCTION ${LOOKUP}(text) TO ${AUTH_USER}`,
    ];
}

type Lookup = "userlist" | "auth_query";

/** The port of each PgBouncer the benchmark starts. */
const PORTS: Record<Lookup, number> = { userlist: PGBOUNCER_PORT + 1, auth_query: PGBOUNCER_PORT + 2 };

/**
 * Starts one PgBouncer beside the stack's, inside its container, from the
 * stack's pgbouncer.ini with another port and log file: for `auth_query`,
 * its userlist has the auth user's line instead of the app role's. Both
 * compared processes are started so (the stack's own logs through Docker,
 * which would count against it). The auth user's password is plain text, on
 * the command line: PgBouncer needs it to log in as that role before any
 * client has, and it is a benchmark's throwaway role on a throwaway stack.
 */
function startPgbouncer(lookup: Lookup, appUser: string): string {
    const ini = `/tmp/${lookup}.ini`;
    const users = `/tmp/${lookup}-users.txt`;
    // For auth_query: a userlist with the auth user's line instead of the app role's, and the two settings.
    const authQuery =
        lookup === "auth_query"
            ? {
                  users: [
                      `grep -v '^"${appUser}" ' ${PGBOUNCER_USERLIST_FILE} > ${users}`,
                      `printf '"%s" "%s"\\n' ${AUTH_USER} "$password" >> ${users}`,
                  ],
                  sed: [
                      `-e 's|^auth_file = .*|auth_file = ${users}|'`,
                      `-e 's|^\\[pgbouncer\\]$|[pgbouncer]\\nauth_user = ${AUTH_USER}\\nauth_query = SELECT uname, phash FROM ${LOOKUP}($1)|'`,
                  ],
              }
            : { users: [], sed: [] };
    return [
        "set -eu",
        'password="$1"',
        ...authQuery.users,
        `sed -e 's|^listen_port = .*|listen_port = ${PORTS[lookup]}|' ${authQuery.sed.join(" ")} ${FILES.pgbouncerIni} > ${ini}`,
        `nohup pgbouncer ${ini} > /tmp/${lookup}.log 2>&1 &`,
        "",
    ].join("\n");
}

async function pgbenchRound(stack: StartedStack, lookup: Lookup, url: URL, options: { seconds: number; clients: number }): Promise<Round> {
    const port = PORTS[lookup];
    const conninfo = `host=${stack.topology.pgbouncer.container} port=${port} dbname=${url.pathname.slice(1)} user=${decodeURIComponent(url.username)} sslmode=require`;
    const { exitCode, output } = await runOnClusterNetwork(
        stack,
        ["pgbench", "-n", "-C", "-f", "/work/login.sql", "-c", String(options.clients), "-j", "2", "-T", String(options.seconds), conninfo],
        {
            files: { "login.sql": "SELECT 1;\n" },
            env: { PGPASSWORD: decodeURIComponent(url.password) },
            timeoutMs: (options.seconds + 60) * 1000,
        },
    );
    if (exitCode !== 0) {
        throw new Error(`pgbench through the ${lookup} PgBouncer exited with ${exitCode}:\n${output.slice(-2000)}`);
    }
    const summary = parseSummary(output);
    return {
        lookup,
        averageConnectionMs: summary.averageConnectionMs ?? Number.NaN,
        sessionsPerSecond: summary.tps,
        sessions: summary.transactions,
        failed: summary.failed,
    };
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            seconds: { type: "string", default: "10" },
            rounds: { type: "string", default: "3" },
            clients: { type: "string", default: "4" },
        },
    });
    const options = { seconds: Number(values.seconds), clients: Number(values.clients) };
    const rounds = Number(values.rounds);
    const stack = await startStack("staging", { overrides: { grafanaEnabled: false }, importProgram: importProgramFresh });
    try {
        await waitForHealthyCluster(stack, 300_000);
        const app = new URL(stack.outputs.databaseUrl);
        const leader = new URL((await waitForLeader(stack, 60_000)).url);
        leader.pathname = app.pathname;
        const authPassword = randomBytes(16).toString("hex");
        for (const sql of lookupFunctionSql(authPassword)) {
            await query(leader.toString(), sql);
        }
        for (const lookup of ["userlist", "auth_query"] as const) {
            await docker(
                "exec",
                stack.topology.pgbouncer.container,
                "sh",
                "-c",
                startPgbouncer(lookup, decodeURIComponent(app.username)),
                "start",
                authPassword,
            );
        }
        const results: Round[] = [];
        for (let round = 0; round < rounds; round++) {
            for (const lookup of round % 2 === 0 ? (["userlist", "auth_query"] as const) : (["auth_query", "userlist"] as const)) {
                const result = await pgbenchRound(stack, lookup, app, options);
                results.push(result);
                console.log(
                    `round ${round + 1} ${lookup}: ${result.averageConnectionMs.toFixed(2)} ms per login, ${result.sessionsPerSecond.toFixed(1)} sessions/s, ${result.failed} failed`,
                );
            }
        }
        // That auth_query did the lookups: PostgreSQL counted them.
        const [{ lookups }] = await query(
            leader.toString(),
            "SELECT coalesce(sum(calls), 0)::int AS lookups FROM pg_stat_statements WHERE query LIKE '%bench_pgbouncer_lookup%' AND query NOT LIKE '%pg_stat_statements%'",
        );
        const authQuerySessions = results.filter((r) => r.lookup === "auth_query").reduce((n, r) => n + r.sessions, 0);
        console.log(`auth_query lookups PostgreSQL ran: ${lookups}, for ${authQuerySessions} sessions through that PgBouncer`);
        if (lookups < authQuerySessions) {
            throw new Error("the auth_query PgBouncer did not look every login up: its figures are not auth_query's");
        }
        console.table(
            (["userlist", "auth_query"] as const).map((lookup) => {
                const mine = results.filter((r) => r.lookup === lookup);
                return {
                    lookup,
                    rounds: mine.length,
                    meanConnectionMs: Number(distribution(mine.map((r) => r.averageConnectionMs)).mean.toFixed(2)),
                    meanSessionsPerSecond: Number(distribution(mine.map((r) => r.sessionsPerSecond)).mean.toFixed(1)),
                    failed: mine.reduce((n, r) => n + r.failed, 0),
                };
            }),
        );
    } finally {
        await stack.stop();
    }
}

main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
});
