// Readers that parse rendered text back by each format's own rules, written
// from the formats' documentation and their parsers' source rather than from
// the renderers, so a test can show that a value comes back unchanged and
// cannot end its field early.

/** Thrown by a reader when the text is not valid in its format. */
export class FormatError extends Error {}

/**
 * One line of a libpq password file (libpq docs, "The Password File"):
 * `host:port:database:user:password`, fields separated by `:`, where `\`
 * makes the next character literal (`\:` and `\\`).
 */
export function readPgpassLine(line: string): string[] {
    const fields = [""];
    for (let i = 0; i < line.length; i++) {
        const c = line[i];
        if (c === "\\" && i + 1 < line.length) {
            i++;
            fields[fields.length - 1] += line[i];
        } else if (c === ":") {
            fields.push("");
        } else {
            fields[fields.length - 1] += c;
        }
    }
    return fields;
}

/**
 * One line of PgBouncer's auth_file (PgBouncer docs, "Authentication file
 * format"): `"user" "secret"`, both fields double-quoted, a `"` inside a field
 * written as `""`.
 */
export function readUserlistLine(line: string): [string, string] {
    let pos = 0;
    const field = (): string => {
        if (line[pos] !== '"') {
            throw new FormatError(`userlist: expected a quote at ${pos} in ${JSON.stringify(line)}`);
        }
        pos++;
        let value = "";
        for (;;) {
            if (pos >= line.length) {
                throw new FormatError(`userlist: unterminated field in ${JSON.stringify(line)}`);
            }
            if (line[pos] === '"') {
                if (line[pos + 1] !== '"') {
                    pos++;
                    return value;
                }
                pos++;
            }
            value += line[pos];
            pos++;
        }
    };
    const user = field();
    while (line[pos] === " ") {
        pos++;
    }
    const secret = field();
    if (pos !== line.length) {
        throw new FormatError(`userlist: text after the secret: ${JSON.stringify(line.slice(pos))}`);
    }
    return [user, secret];
}

/**
 * A `[databases]` connection string as PgBouncer reads it (src/loader.c,
 * `cstr_get_pair`): `key=value` pairs separated by spaces; a value is either
 * bare up to the next space or single-quoted with `''` for a quote.
 * Backslashes have no special meaning. The character after a value is
 * consumed whatever it is, as PgBouncer overwrites it with the terminator.
 */
export function readPgbouncerConnstring(text: string): Record<string, string> {
    const result: Record<string, string> = {};
    const fail = (): never => {
        throw new FormatError(`syntax error in connection string ${JSON.stringify(text)}`);
    };
    let p = 0;
    const skipSpaces = () => {
        while (text[p] === " ") {
            p++;
        }
    };
    for (;;) {
        skipSpaces();
        if (p >= text.length) {
            return result;
        }
        const keyStart = p;
        while (p < text.length && text[p] !== "=" && text[p] !== " ") {
            p++;
        }
        const key = text.slice(keyStart, p);
        skipSpaces();
        if (text[p] !== "=" || key === "") {
            fail();
        }
        p++;
        skipSpaces();
        let value = "";
        if (text[p] === "'") {
            p++;
            for (;;) {
                if (p >= text.length) {
                    fail();
                }
                if (text[p] === "'") {
                    if (text[p + 1] !== "'") {
                        break;
                    }
                    p++;
                }
                value += text[p];
                p++;
            }
            p++;
        } else {
            while (p < text.length && text[p] !== " ") {
                value += text[p];
                p++;
            }
        }
        if (p < text.length) {
            p++;
        }
        if (value === "") {
            fail();
        }
        result[key] = value;
    }
}

const SPACE = /\s/;

/**
 * A libpq keyword/value connection string (libpq docs, "Keyword/Value
 * Connection Strings"; `conninfo_parse` in fe-connect.c): pairs separated by
 * whitespace; a value is bare up to whitespace or single-quoted, and in both
 * forms `\` makes the next character literal.
 */
export function readLibpqConninfo(text: string): Record<string, string> {
    const result: Record<string, string> = {};
    let p = 0;
    while (p < text.length) {
        if (SPACE.test(text[p])) {
            p++;
            continue;
        }
        const keyStart = p;
        while (p < text.length && text[p] !== "=" && !SPACE.test(text[p])) {
            p++;
        }
        const key = text.slice(keyStart, p);
        while (p < text.length && SPACE.test(text[p])) {
            p++;
        }
        if (text[p] !== "=") {
            throw new FormatError(`missing "=" after "${key}" in connection info string`);
        }
        p++;
        while (p < text.length && SPACE.test(text[p])) {
            p++;
        }
        let value = "";
        if (text[p] === "'") {
            p++;
            for (;;) {
                if (p >= text.length) {
                    throw new FormatError("unterminated quoted string in connection info string");
                }
                if (text[p] === "\\") {
                    p++;
                    if (p < text.length) {
                        value += text[p];
                        p++;
                    }
                    continue;
                }
                if (text[p] === "'") {
                    p++;
                    break;
                }
                value += text[p];
                p++;
            }
        } else {
            while (p < text.length && !SPACE.test(text[p])) {
                if (text[p] === "\\") {
                    p++;
                }
                if (p < text.length) {
                    value += text[p];
                    p++;
                }
            }
        }
        result[key] = value;
    }
    return result;
}

const GUC_ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** The body of a postgresql.conf quoted string, de-escaped as `DeescapeQuotedString` in guc-file.l does. */
function deescapeGucString(body: string): string {
    let out = "";
    for (let i = 0; i < body.length; i++) {
        const c = body[i];
        if (c === "\\") {
            i++;
            const e = body[i];
            if (e in GUC_ESCAPES) {
                out += GUC_ESCAPES[e];
            } else if (/[0-7]/.test(e)) {
                let octal = e;
                while (octal.length < 3 && /[0-7]/.test(body[i + 1] ?? "")) {
                    i++;
                    octal += body[i];
                }
                out += String.fromCharCode(parseInt(octal, 8));
            } else {
                out += e;
            }
        } else if (c === "'" && body[i + 1] === "'") {
            i++;
            out += "'";
        } else {
            out += c;
        }
    }
    return out;
}

/**
 * postgresql.conf as the GUC lexer (guc-file.l) reads it: one `name = value`
 * per line, `#` starts a comment outside quotes, a quoted string has `''` for
 * a quote and C-style backslash escapes and cannot contain a raw newline. A
 * bare value is returned as written.
 */
export function readPostgresqlConf(text: string): Record<string, string> {
    const result: Record<string, string> = {};
    for (const line of text.split("\n")) {
        const name = /^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*=?\s*/.exec(line);
        if (line.trim() === "" || line.trimStart().startsWith("#")) {
            continue;
        }
        if (!name) {
            throw new FormatError(`postgresql.conf: syntax error in ${JSON.stringify(line)}`);
        }
        let rest = line.slice(name[0].length);
        let value: string;
        if (rest.startsWith("'")) {
            let end = 1;
            for (;;) {
                if (end >= rest.length) {
                    throw new FormatError(`postgresql.conf: unterminated string in ${JSON.stringify(line)}`);
                }
                if (rest[end] === "\\") {
                    end += 2;
                } else if (rest[end] === "'" && rest[end + 1] === "'") {
                    end += 2;
                } else if (rest[end] === "'") {
                    break;
                } else {
                    end++;
                }
            }
            value = deescapeGucString(rest.slice(1, end));
            rest = rest.slice(end + 1);
        } else {
            const bare = /^[^\s#']+/.exec(rest);
            if (!bare) {
                throw new FormatError(`postgresql.conf: missing value in ${JSON.stringify(line)}`);
            }
            value = bare[0];
            rest = rest.slice(value.length);
        }
        if (!/^\s*(#.*)?$/.test(rest)) {
            throw new FormatError(`postgresql.conf: text after the value in ${JSON.stringify(line)}`);
        }
        result[name[1]] = value;
    }
    return result;
}

/**
 * An SQL string literal or quoted identifier at the start of `text`, read by
 * the SQL standard's rule (standard_conforming_strings on): the quote
 * character doubled inside, nothing else special. Returns the value and the
 * text after the closing quote.
 */
export function readSqlQuoted(text: string, quote: "'" | '"'): { value: string; rest: string } {
    if (text[0] !== quote) {
        throw new FormatError(`SQL: expected ${quote} at the start of ${JSON.stringify(text.slice(0, 40))}`);
    }
    let value = "";
    let i = 1;
    for (;;) {
        if (i >= text.length) {
            throw new FormatError("SQL: unterminated quoted text");
        }
        if (text[i] === quote) {
            if (text[i + 1] !== quote) {
                return { value, rest: text.slice(i + 1) };
            }
            i++;
        }
        value += text[i];
        i++;
    }
}
