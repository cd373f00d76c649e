// pgbench's output, read: the summary it prints at the end of a run, and the
// per-transaction log (`--log`) from which the latency percentiles come.

export interface PgbenchSummary {
    readonly clients: number;
    readonly durationSeconds: number;
    readonly transactions: number;
    readonly failed: number;
    /** Mean latency pgbench reports, in ms. */
    readonly latencyAverageMs: number;
    readonly tps: number;
    /** Time to open every client's connection (`initial connection time`), ms; absent with -C. */
    readonly initialConnectionMs?: number;
    /** Mean time to open one connection (`average connection time`), ms; only with -C. */
    readonly averageConnectionMs?: number;
}

function field(output: string, pattern: RegExp, what: string): number {
    const match = pattern.exec(output);
    if (!match) {
        throw new Error(`pgbench output has no ${what}:\n${output.slice(-1500)}`);
    }
    return Number(match[1]);
}

function optionalField(output: string, pattern: RegExp): number | undefined {
    const match = pattern.exec(output);
    return match ? Number(match[1]) : undefined;
}

/** The closing summary of a pgbench run (pgbench 17). Throws, quoting the output, when a line is missing. */
export function parseSummary(output: string): PgbenchSummary {
    return {
        clients: field(output, /^number of clients: (\d+)$/m, "number of clients"),
        durationSeconds: field(output, /^duration: (\d+) s$/m, "duration"),
        transactions: field(output, /^number of transactions actually processed: (\d+)/m, "transaction count"),
        // Absent when no transaction could fail (no retries and no errors to count).
        failed: optionalField(output, /^number of failed transactions: (\d+)/m) ?? 0,
        latencyAverageMs: field(output, /^latency average = ([\d.]+) ms$/m, "latency average"),
        tps: field(output, /^tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)$/m, "tps"),
        initialConnectionMs: optionalField(output, /^initial connection time = ([\d.]+) ms$/m),
        averageConnectionMs: optionalField(output, /^average connection time = ([\d.]+) ms$/m),
    };
}

export interface TransactionLog {
    /** Latency of each successful transaction, µs. */
    readonly latenciesUs: number[];
    /** When each successful transaction ended, µs since the epoch; same order as `latenciesUs`. */
    readonly endsUs: number[];
    /** Transactions logged as failed (serialization, deadlock, other). */
    readonly failed: number;
}

/**
 * Lines of pgbench's per-transaction log: `client_id transaction_no time
 * script_no time_epoch time_us [schedule_lag] [retries]`, where `time` is the
 * latency in µs, or `failed`, `serialization` or `deadlock` for a transaction
 * that did not commit.
 */
export function parseTransactionLog(text: string, into: TransactionLog = { latenciesUs: [], endsUs: [], failed: 0 }): TransactionLog {
    let failed = into.failed;
    for (const line of text.split("\n")) {
        if (line === "") {
            continue;
        }
        const fields = line.split(" ");
        if (fields.length < 6) {
            throw new Error(`not a pgbench transaction log line: ${JSON.stringify(line)}`);
        }
        const time = fields[2];
        if (/^\d+$/.test(time) && /^\d+$/.test(fields[4]) && /^\d+$/.test(fields[5])) {
            into.latenciesUs.push(Number(time));
            into.endsUs.push(Number(fields[4]) * 1e6 + Number(fields[5]));
        } else if (time === "failed" || time === "serialization" || time === "deadlock") {
            failed++;
        } else {
            throw new Error(`not a pgbench transaction log line: ${JSON.stringify(line)}`);
        }
    }
    return { latenciesUs: into.latenciesUs, endsUs: into.endsUs, failed };
}

export interface SteadyWindow {
    /** Seconds the window spans. */
    readonly seconds: number;
    readonly transactions: number;
    readonly tps: number;
    /** Latencies of the transactions that ended in the window, µs. */
    readonly latenciesUs: number[];
}

/**
 * The last `seconds` of a run, by when transactions ended: pgbench's \`-T\`
 * clock also runs while clients connect, which at 2000 clients takes tens of
 * seconds, so the run is longer and only its end is measured. No transaction
 * runs before every client of a thread is connected, so a run whose logins
 * left less than `seconds` of load gives a shorter window, from its first
 * transaction on.
 */
export function steadyWindow(log: TransactionLog, seconds: number): SteadyWindow {
    if (log.endsUs.length === 0) {
        throw new Error("no transaction completed");
    }
    // A loop, not Math.max(...): a run logs hundreds of thousands of transactions.
    let first = Infinity;
    let last = -Infinity;
    for (const end of log.endsUs) {
        first = Math.min(first, end);
        last = Math.max(last, end);
    }
    const start = Math.max(first, last - seconds * 1e6);
    const latenciesUs = log.latenciesUs.filter((_, i) => log.endsUs[i] > start);
    const span = (last - start) / 1e6;
    return { seconds: span, transactions: latenciesUs.length, tps: latenciesUs.length / span, latenciesUs };
}

/**
 * pgbench's `-T` for `seconds` of load: its clock also runs while the clients
 * connect (tps leaves that time out), so the run gets the logins' expected
 * time on top: 20 ms a client, what a TLS + SCRAM login took at 2000
 * clients on a busy 2-core machine (24 ms straight to PostgreSQL, 21 ms
 * through PgBouncer; 15 and 9.5 ms at 1000). `steadyWindow` then measures the
 * end of the run, and says so when the logins left less.
 */
export function pgbenchDuration(spec: {
    readonly seconds: number;
    readonly clients: number;
    readonly connectPerTransaction?: boolean;
}): number {
    return spec.seconds + (spec.connectPerTransaction ? 0 : Math.ceil(2 + spec.clients * 0.02));
}
