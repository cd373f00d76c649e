import { postgresConfLiteral } from "../escape";

export type ConfValue = string | number | boolean;

function confValue(value: ConfValue): string {
    if (typeof value === "boolean") {
        return value ? "on" : "off";
    }
    if (typeof value === "number") {
        if (!Number.isFinite(value)) {
            throw new Error(`postgresql.conf: ${value} is not a finite number`);
        }
        // The GUC lexer reads plain decimals bare; an exponent ("1e-7") only inside quotes.
        const text = String(value);
        return /^-?\d+(\.\d+)?$/.test(text) ? text : postgresConfLiteral(text);
    }
    return postgresConfLiteral(value);
}

/** `name` or `prefix.name`: PostgreSQL reads no other shape. */
const PARAMETER_NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

/**
 * postgresql.conf from a flat parameter map: one `name = value` line per
 * parameter, sorted by name so that equal input renders byte-identical files.
 */
export function renderPostgresqlConf(parameters: Readonly<Record<string, ConfValue>>): string {
    const lines = Object.keys(parameters)
        .sort()
        .map((name) => {
            if (!PARAMETER_NAME.test(name)) {
                throw new Error(`postgresql.conf: ${JSON.stringify(name)} is not a parameter name`);
            }
            return `${name} = ${confValue(parameters[name])}`;
        });
    return ["# Rendered by obcms-database; changes here are overwritten.", ...lines, ""].join("\n");
}
