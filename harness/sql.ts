import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";

/**
 * Client settings for a stack URL. node-postgres reads `sslmode=require` as
 * verify-full unless asked for libpq's meaning, which is what the URLs are
 * written for (Django/psycopg, psql); tests that verify the server
 * certificate pass the CA themselves.
 */
export function clientConfig(url: string): pg.ClientConfig {
    const parsed = new URL(url);
    if (parsed.searchParams.has("sslmode")) {
        parsed.searchParams.set("uselibpqcompat", "true");
    }
    return { connectionString: parsed.toString(), connectionTimeoutMillis: 10_000 };
}

/**
 * Runs `fn` with a connected client, always closing it. A connection lost
 * while `fn` runs fails its pending and later queries; node-postgres also
 * emits it as an `error` event, which would otherwise be an uncaught
 * exception: it is kept and thrown here if `fn` did not fail on its own.
 */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client(clientConfig(url));
    let lost: Error | undefined;
    client.on("error", (error) => (lost ??= error));
    await client.connect();
    let result: T;
    try {
        result = await fn(client);
    } finally {
        await client.end();
    }
    if (lost) {
        throw lost;
    }
    return result;
}

/** Rows of one query on a fresh connection. */
export function query<R extends pg.QueryResultRow = any>(url: string, sql: string, params?: unknown[]): Promise<R[]> {
    return withClient(url, async (client) => (await client.query<R>(sql, params)).rows);
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
        try {
            const value = await check();
            if (value !== undefined) {
                return value;
            }
        } catch (error) {
            lastError = error;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
}

const run = promisify(execFile);

/** Runs the docker CLI and returns its standard output. */
export async function docker(...args: string[]): Promise<string> {
    return (await run("docker", args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

/** Every process's command line and environment in a container, as the kernel shows them. */
export function processesText(container: string): Promise<string> {
    return docker("exec", container, "sh", "-c", "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\\0' ' '");
}

/** A container's log, both streams: PostgreSQL and the exporters write theirs to stderr. */
export async function containerLog(name: string): Promise<string> {
    const { stdout, stderr } = await run("docker", ["logs", name], { maxBuffer: 64 * 1024 * 1024 });
    return stdout + stderr;
}
