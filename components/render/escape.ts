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

/**
 * A postgresql.conf string literal. The GUC lexer reads a quoted string with
 * `''` for a quote and C-style backslash escapes, so line breaks become `\n`.
 */
export function postgresConfLiteral(value: string): string {
    assertNo(CONTROL, "postgresql.conf", value, "control characters are not allowed");
    const escaped = value
        .replace(/\\/g, "\\\\")
        .replace(/'/g, "''")
        .replace(/\n/g, "\\n")
        .replace(/\r/g, "\\r");
    return `'${escaped}'`;
}

/**
 * A pg_hba.conf token. Tokens are double-quoted so keywords such as `all` are
 * taken literally; pg_hba has no escape for `"` or line breaks, so those are refused.
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
    assertNo(LINE_BREAK, "pgbouncer.ini", value, "line breaks are not allowed");
    assertNo(CONTROL, "pgbouncer.ini", value, "control characters are not allowed");
    return value;
}

/**
 * A value inside a libpq-style connection string, as PgBouncer parses the
 * `[databases]` section: single-quoted with `\'` and `\\` escapes.
 */
export function connstringValue(value: string): string {
    return `'${pgbouncerIniValue(value).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A field of PgBouncer's auth_file: double-quoted, `"` doubled. */
export function userlistField(value: string): string {
    assertNo(LINE_BREAK, "userlist.txt", value, "line breaks are not allowed");
    assertNo(CONTROL, "userlist.txt", value, "control characters are not allowed");
    return `"${value.replace(/"/g, '""')}"`;
}

/** A field of a libpq password file: `:` and `\` escaped with a backslash. */
export function pgpassField(value: string): string {
    assertNo(LINE_BREAK, "pgpass", value, "line breaks are not allowed");
    return value.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
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

/** A POSIX shell word: single-quoted, with `'` written as `'\''`. */
export function shellWord(value: string): string {
    assertNo(/\u0000/, "shell", value, "NUL is not allowed");
    return `'${value.replace(/'/g, "'\\''")}'`;
}
