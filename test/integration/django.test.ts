// The example app stack (examples/app) for real: the staging database stack
// brought up by startStack, then the example program itself run through the
// same DockerMocks, its StackReference answered with the started stack's
// outputs. Django (Debian's python3-django and python3-psycopg2) migrates,
// writes and reads through PgBouncer in transaction mode, on whichever member
// leads and the one that streams from it (asked of Patroni, never assumed).
import { randomBytes } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVER_LIFETIME_SECONDS } from "../../components/render/pgbouncer/config";
import { type StartedStack, startStack } from "../../harness/cluster";
import { DockerMocks } from "../../harness/docker-mocks";
import { promiseOf } from "../../harness/outputs";
import { type MemberStatus, waitForHealthyCluster, waitForLeader, withReplayPaused } from "../../harness/patroni";
import { containerLog, docker, query, waitFor } from "../../harness/sql";
import { APP_ROOT, runAppProgram } from "../support/app-program";
import { StackReferenceMocks } from "../support/stack-reference";

const DATABASE_STACK = "acme/obcms-database/staging";

interface NotesPage {
    readonly notes: string[];
}

describe("example Django app on the staging stack", () => {
    let stack: StartedStack;
    const app = new DockerMocks({ projectDir: APP_ROOT });
    const appStack = `staging-it${randomBytes(3).toString("hex")}`;
    const container = `obcms-app-${appStack}-web`;
    let url: string;

    beforeAll(async () => {
        stack = await startStack("staging", { overrides: { grafanaEnabled: false, monitoringEnabled: false } });
        await waitForHealthyCluster(stack, 180_000);
        // DockerMocks reveals every secret before it creates anything, so
        // which outputs are secret does not matter here (app-example.test.ts checks it).
        const mocks = new StackReferenceMocks(app, { [DATABASE_STACK]: { outputs: { ...stack.outputs }, secretOutputNames: [] } });
        const exports = await runAppProgram({ stack: appStack, config: { databaseStack: DATABASE_STACK }, mocks });
        url = await Promise.race([promiseOf(exports.url as pulumi.Output<string>), app.failure]);
    }, 900_000);

    afterAll(async () => {
        await app.removeAll();
        await stack?.stop();
    }, 120_000);

    /** The member that leads and the one streaming from it (staging has one replica). */
    async function roles(): Promise<{ leader: MemberStatus; replica: MemberStatus }> {
        const members = await waitForHealthyCluster(stack, 180_000);
        return {
            leader: members.find((m) => m.role === "leader") as MemberStatus,
            replica: members.find((m) => m.role === "replica") as MemberStatus,
        };
    }

    async function notes(): Promise<string[]> {
        const response = await fetch(`${url}/notes/`);
        expect(response.status).toBe(200);
        return ((await response.json()) as NotesPage).notes;
    }

    async function addNote(text: string): Promise<void> {
        const response = await fetch(`${url}/notes/`, { method: "POST", body: JSON.stringify({ text }) });
        expect(response.status).toBe(201);
    }

    /** GET /notes/ as a client that sends `cookie`: the note texts, and the cookies the response sets. */
    async function notesWithCookie(cookie: string): Promise<{ texts: string[]; setCookies: string[] }> {
        const response = await fetch(`${url}/notes/`, { headers: { cookie } });
        expect(response.status).toBe(200);
        return { texts: ((await response.json()) as NotesPage).notes, setCookies: response.headers.getSetCookie() };
    }

    /** Runs Python in the app container, as the app's user with the app's settings. */
    async function djangoShell(code: string): Promise<string> {
        return (await docker("exec", container, "python3", "manage.py", "shell", "-c", code)).trim();
    }

    it("migrated through PgBouncer before serving, as the application role", async () => {
        expect(await containerLog(container)).toContain("Applying notes.0001_initial... OK");
        expect(await docker("exec", container, "python3", "manage.py", "migrate", "--noinput")).toContain("No migrations to apply.");
        // The committed migration is the model's.
        expect(await docker("exec", container, "python3", "manage.py", "makemigrations", "--check", "--dry-run")).toContain(
            "No changes detected",
        );
        const { leader } = await roles();
        const tables = await query(leader.url, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes_note'");
        expect(tables).toEqual([{ tableowner: "obcms_app" }]);
    });

    /** Per alias: TLS in use, the sslmode, whether the server is in recovery. */
    function connectionReport(): Promise<string> {
        return djangoShell(
            [
                "from django.db import connections",
                "for alias in ('default', 'replica'):",
                "    c = connections[alias]",
                "    with c.cursor() as cursor:",
                "        cursor.execute('SELECT pg_is_in_recovery()')",
                "        recovery = cursor.fetchone()[0]",
                "    print(alias, c.connection.info.ssl_in_use, c.connection.get_dsn_parameters()['sslmode'], recovery)",
            ].join("\n"),
        );
    }

    it("connects to PgBouncer over TLS with verify-full: writes to the leader, reads from the replica", async () => {
        expect((await connectionReport()).split("\n")).toEqual(["default True verify-full False", "replica True verify-full True"]);
    });

    it("routes the app's reads to the replica: a note written while replay is paused shows up only after it resumes", async () => {
        const { leader, replica } = await roles();
        await addNote("before the pause");
        await waitFor("the first note on the replica", 10_000, async () =>
            (await notes()).includes("before the pause") ? true : undefined,
        );

        await withReplayPaused(leader, replica, async () => {
            await addNote("while paused");
            const onLeader = await query(leader.url, "SELECT text FROM notes_note ORDER BY id");
            expect(onLeader.map((r) => r.text)).toEqual(["before the pause", "while paused"]);
            expect(await notes()).toEqual(["before the pause"]);
        });
        await waitFor("the second note on the replica", 10_000, async () => ((await notes()).length === 2 ? true : undefined));
        expect(await notes()).toEqual(["before the pause", "while paused"]);
    });

    it("reads big querysets without server-side cursors, which transaction pooling would break", async () => {
        const declared = "SELECT coalesce(sum(calls), 0)::int AS n FROM pg_stat_statements WHERE query LIKE 'DECLARE%_django_curs_%'";
        const shell = (...lines: string[]) =>
            djangoShell(["from django.db import connections, transaction", "from notes.models import Note", ...lines].join("\n"));
        const countNotes = "print(sum(1 for _ in Note.objects.iterator(chunk_size=100)))";
        const replicaUrl = (await roles()).replica.url;
        const before = (await query(replicaUrl, declared))[0].n;
        // As configured: plain cursors, no DECLARE on the replica.
        expect(await shell(countNotes)).toBe("2");
        expect((await query(replicaUrl, declared))[0].n).toBe(before);
        // The control: with the setting off, Django declares a cursor, which the count sees. Inside a
        // transaction, which keeps one server connection: outside one, the FETCH may reach another
        // (the app's health check uses the pool meanwhile), the very failure the setting prevents.
        expect(
            await shell(
                "connections['replica'].settings_dict['DISABLE_SERVER_SIDE_CURSORS'] = False",
                'with transaction.atomic(using="replica"):',
                `    ${countNotes}`,
            ),
        ).toBe("2");
        expect((await query(replicaUrl, declared))[0].n).toBe(before + 1);
    });
    // After the tests that count notes: it adds some.
    it("reads its own writes: after a write a client reads from the leader until the replica has replayed it", async () => {
        const { leader, replica } = await roles();
        const cleared = /^obcms_wal_lsn="";.*Max-Age=0/;
        const cookie = await withReplayPaused(leader, replica, async () => {
            const written = await fetch(`${url}/notes/`, { method: "POST", body: JSON.stringify({ text: "my own write" }) });
            expect(written.status).toBe(201);
            const [setCookie] = written.headers.getSetCookie();
            expect(setCookie).toMatch(/^obcms_wal_lsn=.+; .*HttpOnly; Max-Age=300; Path=\/; SameSite=Lax$/);
            const signed = setCookie.split(";")[0];
            // The writer sees its note at once, from the leader, and keeps its cookie...
            expect(await notesWithCookie(signed)).toEqual({ texts: expect.arrayContaining(["my own write"]), setCookies: [] });
            // ...while a client without one reads from the paused replica.
            expect(await notes()).not.toContain("my own write");
            // A cookie the app did not sign changes nothing: honoured, a position the
            // replica has not reached would send this read to the leader.
            expect((await notesWithCookie("obcms_wal_lsn=FFFFFFFF/FFFFFFFF")).texts).not.toContain("my own write");
            return signed;
        });
        // Replayed: the cookie is cleared and the writer reads from the replica again,
        // so a row the replica has not replayed is not there for it.
        await waitFor("the write replayed on the replica", 10_000, async () => {
            const { texts, setCookies } = await notesWithCookie(cookie);
            return texts.includes("my own write") && setCookies.some((c) => cleared.test(c)) ? true : undefined;
        });
        await withReplayPaused(leader, replica, async () => {
            await query(leader.url, "INSERT INTO notes_note (text, created) VALUES ('not replayed yet', now())");
            const { texts, setCookies } = await notesWithCookie(cookie);
            expect(texts).toContain("my own write");
            expect(texts).not.toContain("not replayed yet");
            expect(setCookies).toEqual([expect.stringMatching(cleared)]);
        });

        // What the check costs: GETs that carry a replayed cookie (check, then reads on
        // the replica in one transaction) against GETs without one, interleaved.
        const timed = async (headers: Record<string, string>) => {
            const started = performance.now();
            const response = await fetch(`${url}/notes/`, { headers });
            await response.arrayBuffer();
            return performance.now() - started;
        };
        const withCheck: number[] = [];
        const without: number[] = [];
        for (let i = 0; i < 40; i++) {
            withCheck.push(await timed({ cookie }));
            without.push(await timed({}));
        }
        const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
        console.log(
            `read-your-writes check: median GET ${median(withCheck).toFixed(1)} ms with a replayed cookie, ` +
                `${median(without).toFixed(1)} ms without (40 each, interleaved)`,
        );
    }, 120_000);

    // Last: it moves the lead and adds a note.
    it("keeps serving through a failover: with the leader killed the app writes to the member promoted, and reads from the old leader once it streams again", async () => {
        const { leader, replica } = await roles();
        const before = await notes();
        await docker("kill", leader.container);
        const promoted = await waitForLeader(stack, 120_000, leader.name);
        expect(promoted.name).toBe(replica.name);
        // Django opens a connection per request: once the router sends writes to the new leader, so do the app's.
        await waitFor("PgBouncer's writes on the promoted member", 60_000, async () => {
            const [row] = await query(stack.outputs.databaseUrl, "SELECT pg_is_in_recovery() AS in_recovery");
            return row.in_recovery === false ? true : undefined;
        });
        await addNote("after the failover");
        // No replica streams now: the router sends the read-only pool to the leader, once it has
        // closed the pool's connections to the member that was a replica.
        const read = await waitFor("the note read back", 10_000, async () => {
            const texts = await notes();
            return texts.includes("after the failover") ? texts : undefined;
        });
        expect(read).toEqual([...before, "after the failover"]);

        await docker("start", leader.container);
        const rejoined = await roles();
        expect({ leader: rejoined.leader.name, replica: rejoined.replica.name }).toEqual({ leader: promoted.name, replica: leader.name });
        await waitFor("the note on the old leader, now a replica", 10_000, async () =>
            (await query(rejoined.replica.url, "SELECT 1 FROM notes_note WHERE text = 'after the failover'")).length === 1
                ? true
                : undefined,
        );
        // The read-only pool's server connections to the leader close within PgBouncer's server_lifetime.
        const report = await waitFor(
            "the app's reads on the old leader, now a replica",
            (SERVER_LIFETIME_SECONDS + 30) * 1000,
            async () => {
                const lines = (await connectionReport()).split("\n");
                return lines[1] === "replica True verify-full True" ? lines : undefined;
            },
        );
        expect(report).toEqual(["default True verify-full False", "replica True verify-full True"]);
        expect(await notes()).toEqual([...before, "after the failover"]);
    }, 300_000);
});
