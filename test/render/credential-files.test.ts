import { describe, expect, it } from "vitest";
import { renderPgpass, renderUserlist } from "../../components/render/credentials/credential-files";
import { exactly } from "./fixtures";
import { readPgpassLine, readUserlistLine } from "./formats";

const SCRAM =
    "SCRAM-SHA-256$4096:CqSVhHrC1nBGOv0XEXXA/g==$lmcFalEC0WZcxWwBxhR06VQBSsEmjts0VLlPZKD9Cww=:nxFnOsxscsAc0KHR24sT6xNvP1feMthgFi+VHiR7uXo=";
const MD5 = "md5d2a1fca49af0303efbde6f40bbfe070f";

/** The lines of a rendered file; every file ends with a newline. */
function lines(text: string): string[] {
    expect(text.endsWith("\n")).toBe(true);
    return text.slice(0, -1).split("\n");
}

describe("renderUserlist", () => {
    it("writes one quoted line per user, sorted by user", () => {
        expect(
            renderUserlist([
                { user: "pgbouncer", secret: SCRAM },
                { user: "monitoring", secret: MD5 },
                { user: "obcms_app", secret: "x" },
            ]),
        ).toBe(`"monitoring" "${MD5}"\n"obcms_app" "x"\n"pgbouncer" "${SCRAM}"\n`);
    });

    it("sorts by code unit, so the order does not depend on the locale", () => {
        expect(
            renderUserlist([
                { user: "b", secret: "1" },
                { user: "Z", secret: "2" },
                { user: "a", secret: "3" },
                { user: "É", secret: "4" },
            ]),
        ).toBe('"Z" "2"\n"a" "3"\n"b" "1"\n"É" "4"\n');
    });

    it("renders the same bytes whatever the input order", () => {
        const entries = [
            { user: "postgres", secret: "1" },
            { user: "replicator", secret: "2" },
            { user: "monitoring", secret: "3" },
        ];
        expect(renderUserlist([...entries].reverse())).toBe(renderUserlist(entries));
    });

    it("doubles quotes so a hostile user or secret cannot add a user, and reads back unchanged", () => {
        const entries = [
            { user: 'evil" "x"\n"admin', secret: "s" },
            { user: 'o"brien', secret: 'p"w" "x' },
            { user: "Ñoño 東京", secret: "#;\\" },
        ];
        expect(() => renderUserlist(entries)).toThrow(
            exactly('userlist.txt: cannot write "evil\\" \\"x\\"\\n\\"admin": line breaks are not allowed'),
        );

        const text = renderUserlist(entries.slice(1));
        expect(text).toBe('"o""brien" "p""w"" ""x"\n"Ñoño 東京" "#;\\"\n');
        expect(lines(text).map(readUserlistLine)).toEqual([
            ['o"brien', 'p"w" "x'],
            ["Ñoño 東京", "#;\\"],
        ]);
    });

    it("renders an empty file for no users", () => {
        expect(renderUserlist([])).toBe("");
    });
});

describe("renderPgpass", () => {
    it("writes host:port:database:user:password lines in the order given", () => {
        expect(
            renderPgpass([
                { host: "obcms-database-staging-primary", port: 5432, database: "*", user: "replicator", password: "s3cret" },
                { host: "localhost", port: 6432, database: "obcms", user: "obcms_app", password: "p:w\\d" },
            ]),
        ).toBe("obcms-database-staging-primary:5432:*:replicator:s3cret\nlocalhost:6432:obcms:obcms_app:p\\:w\\\\d\n");
    });

    it("escapes every field so a hostile password splits back into the original five fields", () => {
        const entry = { host: "h:ost", port: 5432, database: "d\\b", user: 'o\'brien "x"', password: "a:b\\c:#; Ñoño 東京" };
        const text = renderPgpass([entry]);
        expect(text).toBe('h\\:ost:5432:d\\\\b:o\'brien "x":a\\:b\\\\c\\:#; Ñoño 東京\n');
        expect(lines(text).map(readPgpassLine)).toEqual([["h:ost", "5432", "d\\b", 'o\'brien "x"', "a:b\\c:#; Ñoño 東京"]]);
    });

    it("refuses a password with a line break, which would start an entry of its own", () => {
        expect(() => renderPgpass([{ host: "h", port: 5432, database: "*", user: "replicator", password: "x\n*:*:*:*:known" }])).toThrow(
            exactly('pgpass: cannot write "x\\n*:*:*:*:known": line breaks are not allowed'),
        );
    });

    it("renders an empty file for no entries", () => {
        expect(renderPgpass([])).toBe("");
    });
});
