// The benchmark's readers of pgbench output, docker top and /proc files, on
// real samples (pgbench 17.12, Docker 20.10, Linux 6.18, the project image).
import { describe, expect, it } from "vitest";
import { parseSummary, parseTransactionLog, pgbenchDuration, steadyWindow } from "../../bench/pgbench";
import { clientBackends, parseSmapsRollup, parseStatTicks, parseTop } from "../../bench/procfs";

const TPCB_OUTPUT = `pgbench (17.12 (Debian 17.12-0+deb13u1))
progress: 1.0 s, 1367.9 tps, lat 1.377 ms stddev 2.937, 0 failed
progress: 2.0 s, 1420.0 tps, lat 1.398 ms stddev 2.847, 0 failed
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
query mode: simple
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 2790
number of failed transactions: 0 (0.000%)
latency average = 1.396 ms
latency stddev = 2.906 ms
initial connection time = 54.394 ms
tps = 1422.603487 (without initial connection time)
`;

const CONNECT_OUTPUT = `pgbench (17.12 (Debian 17.12-0+deb13u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 206
number of failed transactions: 3 (1.435%)
latency average = 19.558 ms
average connection time = 14.310 ms
tps = 102.261112 (including reconnection times)
`;

const SMAPS_ROLLUP = `5605e7825000-7fffdd8ea000 ---p 00000000 00:00 0                          [rollup]
Rss:               29028 kB
Pss:               10811 kB
Pss_Dirty:          8557 kB
Pss_Anon:            595 kB
Pss_File:           2254 kB
Pss_Shmem:          7961 kB
Shared_Clean:      15792 kB
Shared_Dirty:       7612 kB
Private_Clean:        32 kB
Private_Dirty:      5592 kB
Referenced:        29028 kB
Anonymous:          2208 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`;

/** `docker top <primary> -eo pid,args` of a production stack under load (abridged). */
const PRIMARY_TOP = `PID                 COMMAND
16831               postgres -D /var/lib/postgresql/data/pgdata -c config_file=/etc/obcms/postgresql.conf
16975               postgres: primary: checkpointer
17153               postgres: primary: walsender replicator 172.26.0.4(59678) streaming 0/3CBE678
18135               postgres: primary: obcms_app obcms 172.26.0.3(55882) idle
18271               postgres: primary: obcms_app obcms 172.26.0.10(57716) idle
18275               postgres: primary: obcms_app obcms 172.26.0.10(57720) SELECT
18325               postgres: primary: monitoring obcms 172.26.0.7(55670) idle

`;

describe("pgbench summary", () => {
    it("reads a persistent-connection run", () => {
        expect(parseSummary(TPCB_OUTPUT)).toEqual({
            clients: 2,
            durationSeconds: 2,
            transactions: 2790,
            failed: 0,
            latencyAverageMs: 1.396,
            tps: 1422.603487,
            initialConnectionMs: 54.394,
            averageConnectionMs: undefined,
        });
    });

    it("reads a -C run, with its mean connection time and failures", () => {
        expect(parseSummary(CONNECT_OUTPUT)).toEqual({
            clients: 2,
            durationSeconds: 2,
            transactions: 206,
            failed: 3,
            latencyAverageMs: 19.558,
            tps: 102.261112,
            initialConnectionMs: undefined,
            averageConnectionMs: 14.31,
        });
    });

    it("refuses output without a result, quoting it", () => {
        const aborted =
            "pgbench (17.12 (Debian 17.12-0+deb13u1))\npgbench: error: connection to server failed: FATAL:  too many connections\n";
        expect(() => parseSummary(aborted)).toThrow(`pgbench output has no number of clients:\n${aborted}`);
    });
});

describe("pgbench transaction log", () => {
    it("takes each transaction's latency in µs and counts failed ones", () => {
        const log = parseTransactionLog(
            [
                "0 1 4554 0 1795971389 76070",
                "0 2 2979 0 1795971389 79067",
                "1 1 failed 0 1795971389 80938",
                "1 2 16391 0 1795971389 97339",
                "",
            ].join("\n"),
        );
        expect(log).toEqual({
            latenciesUs: [4554, 2979, 16391],
            endsUs: [1795971389076070, 1795971389079067, 1795971389097339],
            failed: 1,
        });
    });

    it("adds one thread's file to what the others gave", () => {
        const first = parseTransactionLog("0 1 730 0 1795971389 79805\n");
        const both = parseTransactionLog("1 1 6772 0 1795971389 78316\n1 2 serialization 0 1795971389 80000\n", first);
        expect(both).toEqual({ latenciesUs: [730, 6772], endsUs: [1795971389079805, 1795971389078316], failed: 1 });
    });

    it("refuses a line that is not a transaction", () => {
        expect(() => parseTransactionLog("0 1 4554\n")).toThrow('not a pgbench transaction log line: "0 1 4554"');
        expect(() => parseTransactionLog("0 1 skipped 0 1795971389 1\n")).toThrow(
            'not a pgbench transaction log line: "0 1 skipped 0 1795971389 1"',
        );
    });

    it("gives -T the logins' expected time on top of the load, except with -C", () => {
        expect(pgbenchDuration({ seconds: 20, clients: 2000 })).toBe(62);
        expect(pgbenchDuration({ seconds: 20, clients: 1000 })).toBe(42);
        expect(pgbenchDuration({ seconds: 5, clients: 1 })).toBe(8);
        expect(pgbenchDuration({ seconds: 20, clients: 50, connectPerTransaction: true })).toBe(20);
    });
});

describe("steady window", () => {
    /** One transaction ending every 10 ms from t = 1 s to t = 5 s, latency = its index. */
    const log = {
        latenciesUs: Array.from({ length: 401 }, (_, i) => i),
        endsUs: Array.from({ length: 401 }, (_, i) => 1_000_000 + i * 10_000),
        failed: 0,
    };

    it("measures the last seconds of the run by transaction end times", () => {
        const window = steadyWindow(log, 2);
        expect(window.seconds).toBe(2);
        // Ends after t = 3 s up to 5 s: indexes 201..400.
        expect(window.transactions).toBe(200);
        expect(window.tps).toBe(100);
        expect(window.latenciesUs[0]).toBe(201);
        expect(window.latenciesUs[199]).toBe(400);
    });

    it("is shorter when the logins left less load than asked for", () => {
        const window = steadyWindow(log, 10);
        expect(window.seconds).toBe(4);
        expect(window.transactions).toBe(400);
        expect(window.tps).toBe(100);
    });

    it("refuses a run without a transaction", () => {
        expect(() => steadyWindow({ latenciesUs: [], endsUs: [], failed: 3 }, 20)).toThrow("no transaction completed");
    });
});

describe("/proc readers", () => {
    it("reads smaps_rollup in bytes; private is Private_Clean + Private_Dirty", () => {
        expect(parseSmapsRollup(SMAPS_ROLLUP)).toEqual({ rss: 29028 * 1024, pss: 10811 * 1024, private: (32 + 5592) * 1024 });
        expect(() => parseSmapsRollup("Pss: 1 kB\n")).toThrow("smaps_rollup has no Rss line");
    });

    it("finds the client backends among a container's processes, with user and client address, and no WAL sender", () => {
        expect(clientBackends(parseTop(PRIMARY_TOP))).toEqual([
            { pid: 18135, user: "obcms_app", database: "obcms", clientAddress: "172.26.0.3" },
            { pid: 18271, user: "obcms_app", database: "obcms", clientAddress: "172.26.0.10" },
            { pid: 18275, user: "obcms_app", database: "obcms", clientAddress: "172.26.0.10" },
            { pid: 18325, user: "monitoring", database: "obcms", clientAddress: "172.26.0.7" },
        ]);
        expect(parseTop("PID                 COMMAND\n16876               pgbouncer /etc/obcms/pgbouncer.ini\n")).toEqual([
            { pid: 16876, args: "pgbouncer /etc/obcms/pgbouncer.ini" },
        ]);
    });

    it("refuses what is not docker top -eo pid,args output", () => {
        expect(() => parseTop("UID PID PPID C STIME TTY TIME CMD\n")).toThrow(
            'not docker top -eo pid,args output: "UID PID PPID C STIME TTY TIME CMD"',
        );
        expect(() => parseTop("PID COMMAND\nx postgres\n")).toThrow('not a docker top line: "x postgres"');
    });

    it("reads utime + stime from /proc/<pid>/stat, also when the name has spaces and parentheses", () => {
        const stat =
            "23 (postgres) S 1 23 23 0 -1 4194560 8368 169834 0 0 2 10 148 103 20 0 1 0 1019805 219828224 7204 18446744073709551615 94583359811584 94583365867817 140736910495296 0 0 0 4194304 19935232 84487 1 0 0 17 1 0 0 0 0 0\n";
        expect(parseStatTicks(stat)).toBe(12);
        expect(parseStatTicks(stat.replace("(postgres)", "(pg (x) y)"))).toBe(12);
        expect(() => parseStatTicks("23 (postgres) S 1\n")).toThrow('not a /proc/<pid>/stat line: "23 (postgres) S 1\\n"');
    });
});
