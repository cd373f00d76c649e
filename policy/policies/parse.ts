// Readers for the files PostgreSQL and PgBouncer load, in their own formats,
// so a policy judges what the servers will read rather than how the program
// built it. Pure: text in, plain data out.

/** postgresql.conf: parameter name (lower case) → value, later lines winning as in PostgreSQL. */
export function parsePostgresqlConf(text: string): Map<string, string> {
    const parameters = new Map<string, string>();
    for (const line of text.split("\n")) {
        const match = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*('(?:[^'\\]|''|\\.)*'|[^\s#']*)\s*(#.*)?$/.exec(line);
        if (match) {
            parameters.set(match[1].toLowerCase(), confValue(match[2]));
        }
    }
    return parameters;
}

function confValue(raw: string): string {
    if (!raw.startsWith("'")) {
        return raw;
    }
    return raw
        .slice(1, -1)
        .replace(/''/g, "'")
        .replace(/\\(.)/g, (_, c: string) => ({ n: "\n", r: "\r", t: "\t" })[c] ?? c);
}

export interface HbaLine {
    /** 1-based line number in the file. */
    readonly lineNumber: number;
    /** The line as written, for messages. */
    readonly text: string;
    readonly type: string;
    readonly database: string;
    readonly user: string;
    /** Absent for `local` lines. */
    readonly address?: string;
    readonly method: string;
}

/** One token of a pg_hba.conf line: a quoted token loses its quotes (`""` is a quote). */
function hbaTokens(line: string): string[] {
    const tokens: string[] = [];
    for (const match of line.matchAll(/"((?:[^"]|"")*)"|([^\s"#]+)|(#.*)/g)) {
        if (match[3] !== undefined) {
            break;
        }
        tokens.push(match[1] !== undefined ? match[1].replace(/""/g, '"') : match[2]);
    }
    return tokens;
}

/**
 * pg_hba.conf rules in file order. An address given as `IP MASK` is joined
 * with a slash; options after the method are dropped.
 */
export function parsePgHba(text: string): HbaLine[] {
    const lines: HbaLine[] = [];
    text.split("\n").forEach((line, i) => {
        const tokens = hbaTokens(line);
        if (tokens.length === 0) {
            return;
        }
        const [type, database, user, ...rest] = tokens;
        const base = { lineNumber: i + 1, text: line.trim(), type, database: database ?? "", user: user ?? "" };
        if (type === "local") {
            lines.push({ ...base, method: rest[0] ?? "" });
        } else if (rest.length >= 3 && /^\d+\.\d+\.\d+\.\d+$/.test(rest[1] ?? "")) {
            lines.push({ ...base, address: `${rest[0]}/${rest[1]}`, method: rest[2] });
        } else {
            lines.push({ ...base, address: rest[0] ?? "", method: rest[1] ?? "" });
        }
    });
    return lines;
}

/** An INI file as PgBouncer and pgBackRest read it: section (lower case) → key (lower case) → value. */
export function parseIni(text: string): Map<string, Map<string, string>> {
    const sections = new Map<string, Map<string, string>>();
    let current: Map<string, string> | undefined;
    for (const line of text.split("\n")) {
        const trimmed = line.trim();
        const section = /^\[([^\]]+)\]$/.exec(trimmed);
        if (section) {
            const name = section[1].toLowerCase();
            current = sections.get(name) ?? new Map<string, string>();
            sections.set(name, current);
            continue;
        }
        const setting = /^([^=;#\s][^=]*?)\s*=\s*(.*)$/.exec(trimmed);
        if (setting && current) {
            current.set(setting[1].toLowerCase(), setting[2]);
        }
    }
    return sections;
}

/** PgBouncer's auth_file: `"user" "secret"` lines, `""` inside quotes being a quote. */
export function parseUserlist(text: string): Array<{ user: string; secret: string }> {
    const entries: Array<{ user: string; secret: string }> = [];
    for (const line of text.split("\n")) {
        const match = /^\s*"((?:[^"]|"")*)"\s+"((?:[^"]|"")*)"/.exec(line);
        if (match) {
            entries.push({ user: match[1].replace(/""/g, '"'), secret: match[2].replace(/""/g, '"') });
        }
    }
    return entries;
}

/** A stored password verifier PostgreSQL and PgBouncer accept instead of a password. */
export function isPasswordVerifier(secret: string): boolean {
    return /^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(secret) || /^md5[0-9a-f]{32}$/.test(secret);
}
