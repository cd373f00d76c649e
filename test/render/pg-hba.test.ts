import { describe, expect, it } from "vitest";
import { hbaSections } from "../../components/render/postgres/hba-rules";
import { renderPgHba } from "../../components/render/postgres/pg-hba";
import { exactly, production, staging } from "./fixtures";

const STAGING_HBA = [
    "# Rendered by obcms-database; changes here are overwritten.",
    "",
    "# Local socket: operating-system user must match the role",
    "local all all peer",
    "",
    "# Streaming replication: the replication role, from the cluster network only",
    'hostssl replication "replicator" samenet scram-sha-256',
    "host replication all all reject",
    'host all "replicator" all reject',
    "",
    "# Everything else: password",
    "host all all all scram-sha-256",
    "",
].join("\n");

/** Production requires TLS from clients, so the catch-all password rule only matches TLS connections. */
const PRODUCTION_HBA = [
    "# Rendered by obcms-database; changes here are overwritten.",
    "",
    "# Local socket: operating-system user must match the role",
    "local all all peer",
    "",
    "# Streaming replication: the replication role, from the cluster network only",
    'hostssl replication "replicator" samenet scram-sha-256',
    "host replication all all reject",
    'host all "replicator" all reject',
    "",
    "# Everything else: password, over TLS only",
    "hostssl all all all scram-sha-256",
    "",
].join("\n");

/** The rules, without comments and blank lines, in the order PostgreSQL tries them. */
function rules(text: string): string[] {
    return text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
}

describe("renderPgHba", () => {
    it("renders the staging sections as the exact file", () => {
        expect(renderPgHba(hbaSections(staging))).toBe(STAGING_HBA);
    });

    it("renders the production sections, TLS-only for passwords, as the exact file", () => {
        expect(renderPgHba(hbaSections(production))).toBe(PRODUCTION_HBA);
    });

    it("never trusts anyone", () => {
        expect(renderPgHba(hbaSections(staging))).not.toMatch(/trust/);
        expect(renderPgHba(hbaSections({ ...staging, authMethod: "md5" }))).not.toMatch(/trust/);
        expect(renderPgHba(hbaSections(production))).not.toMatch(/trust/);
    });

    it("has exactly one local rule, and it is peer", () => {
        expect(rules(renderPgHba(hbaSections(staging))).filter((rule) => rule.startsWith("local"))).toEqual(["local all all peer"]);
    });

    it.each([
        ["staging", staging],
        ["production", production],
    ])(
        "allows replication only to the replicator role from samenet over TLS, and rejects that role everywhere else (%s)",
        (_stack, settings) => {
            const all = rules(renderPgHba(hbaSections(settings)));
            const replication = all.filter((rule) => rule.split(" ")[1] === "replication");
            expect(replication).toEqual(['hostssl replication "replicator" samenet scram-sha-256', "host replication all all reject"]);
            const replicator = all.filter((rule) => rule.split(" ")[2] === '"replicator"');
            expect(replicator).toEqual(['hostssl replication "replicator" samenet scram-sha-256', 'host all "replicator" all reject']);
            // First match wins: the rejections must come before the catch-all password rule.
            expect(all.indexOf('host all "replicator" all reject')).toBe(all.length - 2);
        },
    );

    it("switches every password rule to md5 when authMethod is md5", () => {
        const text = renderPgHba(hbaSections({ ...staging, authMethod: "md5" }));
        expect(text).toBe(STAGING_HBA.replace(/scram-sha-256/g, "md5"));
        expect(rules(text).filter((rule) => rule.endsWith(" md5"))).toEqual([
            'hostssl replication "replicator" samenet md5',
            "host all all all md5",
        ]);
        expect(text).not.toMatch(/scram/);
    });

    it("writes keywords bare and quotes every other token, including addresses", () => {
        const text = renderPgHba([
            {
                title: "Tokens",
                rules: [
                    { type: "host", database: "a#b,c", user: "o'brien", address: "10.0.0.0/8", method: "md5" },
                    { type: "host", database: "all", user: "all", address: "samehost", method: "reject" },
                    { type: "host", database: "replication", user: "+group", address: "samenet", method: "reject" },
                ],
            },
        ]);
        expect(rules(text)).toEqual([
            'host "a#b,c" "o\'brien" "10.0.0.0/8" md5',
            "host all all samehost reject",
            'host replication "+group" samenet reject',
        ]);
    });

    it("keeps sections and rules in the order given", () => {
        const text = renderPgHba([
            { title: "B", rules: [{ type: "local", database: "all", user: "all", method: "reject" }] },
            { title: "A", rules: [{ type: "local", database: "all", user: "all", method: "peer" }] },
        ]);
        expect(text).toBe(
            "# Rendered by obcms-database; changes here are overwritten.\n\n# B\nlocal all all reject\n\n# A\nlocal all all peer\n",
        );
    });

    it("a section title with a line break cannot add a rule", () => {
        let text = "";
        try {
            text = renderPgHba([{ title: "Users\nhost all all all trust", rules: [] }]);
        } catch {
            // Refusing the title is a fix too.
        }
        expect(rules(text)).toEqual([]);
    });

    it("refuses a token with whitespace or a quote, and a host rule without an address", () => {
        expect(() => renderPgHba([{ title: "t", rules: [{ type: "local", database: "all", user: "bad user", method: "peer" }] }])).toThrow(
            exactly('pg_hba.conf: cannot write "bad user": quotes and whitespace are not allowed in a token'),
        );
        expect(() =>
            renderPgHba([{ title: "t", rules: [{ type: "local", database: 'x"\nhost all all all trust', user: "all", method: "peer" }] }]),
        ).toThrow(exactly('pg_hba.conf: cannot write "x\\"\\nhost all all all trust": quotes and whitespace are not allowed in a token'));
        expect(() => renderPgHba([{ title: "t", rules: [{ type: "host", database: "all", user: "all", method: "reject" }] }])).toThrow(
            exactly("pg_hba.conf: a host rule needs an address"),
        );
    });
});
