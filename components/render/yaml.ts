// YAML for the monitoring files (Prometheus, its rules, Grafana provisioning):
// block style, map keys sorted so equal input renders equal bytes, and every
// string double-quoted through `yamlString`, so no value can start a new key,
// end its line or turn into another type (`yes`, `1e3`, `null`).
import { UnsafeValueError, yamlString } from "./escape";

export type YamlValue = string | number | boolean | readonly YamlValue[] | { readonly [key: string]: YamlValue };

/** Keys written bare; anything else is quoted. */
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Bare words YAML 1.1 or 1.2 reads as null or a boolean. */
const RESERVED_WORD = /^(null|true|false|yes|no|on|off|y|n)$/i;
/** YAML's limit on an implicit key. */
const MAX_KEY_LENGTH = 1024;

function key(name: string): string {
    const written = PLAIN_KEY.test(name) && !RESERVED_WORD.test(name) ? name : yamlString(name);
    if (written.length > MAX_KEY_LENGTH) {
        throw new UnsafeValueError("YAML", name, `a key cannot be longer than ${MAX_KEY_LENGTH} characters as written`);
    }
    return written;
}

function scalar(value: string | number | boolean): string {
    if (typeof value === "string") {
        return yamlString(value);
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
        throw new UnsafeValueError("YAML", String(value), "not a finite number");
    }
    return String(value);
}

function isCollection(value: YamlValue): value is readonly YamlValue[] | { readonly [key: string]: YamlValue } {
    return typeof value === "object";
}

function isEmpty(value: YamlValue): boolean {
    return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
}

/** The lines of `value` as a block collection, each indented by `indent` spaces. */
function block(value: readonly YamlValue[] | { readonly [key: string]: YamlValue }, indent: number): string[] {
    const pad = " ".repeat(indent);
    const entries: Array<[string, YamlValue]> = Array.isArray(value)
        ? value.map((item) => ["- ", item])
        : Object.keys(value)
              .sort()
              .map((k) => [`${key(k)}: `, (value as { readonly [key: string]: YamlValue })[k]]);
    const lines: string[] = [];
    for (const [lead, item] of entries) {
        if (!isCollection(item)) {
            lines.push(`${pad}${lead}${scalar(item)}`);
        } else if (isEmpty(item)) {
            lines.push(`${pad}${lead}${Array.isArray(item) ? "[]" : "{}"}`);
        } else if (lead === "- ") {
            // A collection in a list starts on the dash's line: "- key: value".
            const [first, ...rest] = block(item, indent + 2);
            lines.push(`${pad}- ${first.slice(indent + 2)}`, ...rest);
        } else {
            lines.push(`${pad}${lead.trimEnd()}`, ...block(item, indent + 2));
        }
    }
    return lines;
}

/** A YAML document for a map, with a leading comment line. */
export function renderYaml(comment: string, document: { readonly [key: string]: YamlValue }): string {
    if (/[\r\n]/.test(comment)) {
        throw new UnsafeValueError("YAML", comment, "a comment cannot span lines");
    }
    return [`# ${comment}`, ...block(document, 0), ""].join("\n");
}
