// The only place where values are quoted for the files and commands the
// program renders. Each renderer passes every value it writes through one of
// these helpers, so a value can never end a line, a quoted string or a
// statement early and inject something of its own.

/** Thrown when a value cannot be represented safely in the target format. */
export class UnsafeValueError extends Error {
    constructor(format: string, value: string, reason: string) {
        super(`${format}: cannot write ${JSON.stringify(value)}: ${reason}`);
        this.name = "UnsafeValueError";
    }
}

const LINE_BREAK = /[\r\n\u0085\u2028\u2029]/;
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function assertNo(pattern: RegExp, format: string, value: string, reason: string): void {
    if (pattern.test(value)) {
        throw new UnsafeValueError(format, value, reason);
    }
}

/** `value` unchanged, when it has neither a line break nor a control character: it cannot end its line early. */
export function singleLine(format: string, value: string): string {
    assertNo(LINE_BREAK, format, value, "line breaks are not allowed");
    assertNo(CONTROL, format, value, "control characters are not allowed");
    return value;
}

/**
 * A postgresql.conf string literal. The GUC lexer reads a quoted string with
 * `''` for a quote and C-style backslash escapes, so line breaks become `\n`.
 */
export function postgresConfLiteral(value: string): string {
    assertNo(CONTROL, "postgresql.conf", value, "control characters are not allowed");
    const escaped = value.replace(/\\/g, "\\\\").replace(/'/g, "''").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
    return `'${escaped}'`;
}

/**
 * A pg_hba.conf token. Tokens are double-quoted so keywords such as `all` are
 * taken literally. pg_hba reads `""` inside quotes as a quote, but we never
 * need one, so quotes, whitespace and line breaks are simply refused.
 */
export function hbaToken(value: string): string {
    assertNo(/["\s]/, "pg_hba.conf", value, "quotes and whitespace are not allowed in a token");
    assertNo(CONTROL, "pg_hba.conf", value, "control characters are not allowed");
    if (value === "") {
        throw new UnsafeValueError("pg_hba.conf", value, "a token cannot be empty");
    }
    return `"${value}"`;
}

/** A value on a `key = value` line of pgbouncer.ini, which ends at the line break. */
export function pgbouncerIniValue(value: string): string {
    return singleLine("pgbouncer.ini", value);
}

/**
 * A value in a `[databases]` connection string of pgbouncer.ini. PgBouncer's
 * own parser, unlike libpq's, takes a backslash literally and reads `''` inside
 * single quotes as a quote.
 */
export function pgbouncerConnstringValue(value: string): string {
    if (value === "") {
        throw new UnsafeValueError("pgbouncer.ini", value, "a connection parameter cannot be empty");
    }
    return `'${pgbouncerIniValue(value).replace(/'/g, "''")}'`;
}

/** A value in a libpq connection string (e.g. primary_conninfo): single-quoted, `\'` and `\\` escaped. */
export function libpqConnstringValue(value: string): string {
    singleLine("connection string", value);
    return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A `#` comment line in a config file: it must not end early and start a setting. */
export function commentText(value: string): string {
    return singleLine("comment", value);
}

/** A field of PgBouncer's auth_file: double-quoted, `"` doubled. */
export function userlistField(value: string): string {
    singleLine("userlist.txt", value);
    return `"${value.replace(/"/g, '""')}"`;
}

/**
 * A field of a libpq password file: `:` and `\` escaped with a backslash, and a
 * leading `#` too, which would otherwise make the line a comment.
 */
export function pgpassField(value: string): string {
    singleLine("pgpass", value);
    return value.replace(/\\/g, "\\\\").replace(/:/g, "\\:").replace(/^#/, "\\#");
}

/** An SQL string literal (standard_conforming_strings is on in PostgreSQL 17). */
export function sqlLiteral(value: string): string {
    assertNo(/\u0000/, "SQL", value, "NUL is not allowed");
    return `'${value.replace(/'/g, "''")}'`;
}

/** An SQL identifier, always quoted so case and reserved words are kept as given. */
export function sqlIdentifier(value: string): string {
    assertNo(/\u0000/, "SQL", value, "NUL is not allowed");
    return `"${value.replace(/"/g, '""')}"`;
}

/** An identifier as the argument of a psql meta-command such as `\connect`, which ends at the line break. */
export function psqlMetaIdentifier(value: string): string {
    assertNo(LINE_BREAK, "psql", value, "line breaks are not allowed in a meta-command");
    return sqlIdentifier(value);
}

/** A POSIX shell word: single-quoted, with `'` written as `'\''`. */
export function shellWord(value: string): string {
    assertNo(/\u0000/, "shell", value, "NUL is not allowed");
    return `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * A word of haproxy.cfg. HAProxy splits a line at whitespace and reads
 * quotes, backslashes, `#` and `$` itself, so a word with any of them is
 * refused rather than quoted: the program's words are names, paths and numbers.
 */
export function haproxyWord(value: string): string {
    assertNo(/[\s"'\\#$]/, "haproxy.cfg", value, "whitespace, quotes, backslashes, # and $ are not allowed in a word");
    assertNo(CONTROL, "haproxy.cfg", value, "control characters are not allowed");
    if (value === "") {
        throw new UnsafeValueError("haproxy.cfg", value, "a word cannot be empty");
    }
    return value;
}

/**
 * A YAML double-quoted scalar. A JSON string is one, except that YAML also
 * breaks lines at NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR and does not
 * allow DEL, C1 controls, BOM or the non-characters U+FFFE/U+FFFF unescaped,
 * so those are written as `\u` escapes too. Lone surrogates have no UTF-8
 * form and are refused.
 */
export function yamlString(value: string): string {
    if (/\p{Surrogate}/u.test(value)) {
        throw new UnsafeValueError("YAML", value, "lone surrogates are not allowed");
    }
    return JSON.stringify(value).replace(
        /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
}

/**
 * A value on a `key=value` line of pgbackrest.conf. pgBackRest takes the rest
 * of the line as the value, without quoting, and trims surrounding spaces, so
 * line breaks, controls and leading or trailing whitespace are refused.
 */
export function pgbackrestConfValue(value: string): string {
    singleLine("pgbackrest.conf", value);
    if (value === "" || value.trim() !== value) {
        throw new UnsafeValueError("pgbackrest.conf", value, "a value cannot be empty or start or end with whitespace");
    }
    return value;
}
