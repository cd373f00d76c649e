import { commentText, hbaToken } from "../escape";

export type HbaMethod = "peer" | "scram-sha-256" | "md5" | "reject";

export interface HbaRule {
    /** `hostssl` matches only TLS connections. */
    readonly type: "local" | "host" | "hostssl";
    readonly database: string;
    readonly user: string;
    /** `samenet`, `all` or a CIDR; absent for `local` rules. */
    readonly address?: string;
    readonly method: HbaMethod;
}

/** Keywords pg_hba.conf gives a meaning to; every other token is quoted. */
const KEYWORDS = new Set(["all", "replication", "samenet", "samehost"]);

function token(value: string): string {
    return KEYWORDS.has(value) ? value : hbaToken(value);
}

function line(rule: HbaRule): string {
    const fields = [rule.type, token(rule.database), token(rule.user)];
    if (rule.type !== "local") {
        if (rule.address === undefined) {
            throw new Error("pg_hba.conf: a host rule needs an address");
        }
        fields.push(token(rule.address));
    }
    fields.push(rule.method);
    return fields.join(" ");
}

/**
 * pg_hba.conf in labelled sections. Order matters (the first matching rule
 * wins), so sections and rules are written exactly in the order given.
 */
export function renderPgHba(sections: ReadonlyArray<{ title: string; rules: readonly HbaRule[] }>): string {
    const body = sections.flatMap((section) => [`# ${commentText(section.title)}`, ...section.rules.map(line), ""]);
    return ["# Rendered by obcms-database; changes here are overwritten.", "", ...body].join("\n");
}
