import { postgresConfLiteral } from "./escape";

export type ConfValue = string | number | boolean;

function confValue(value: ConfValue): string {
    if (typeof value === "boolean") {
        return value ? "on" : "off";
    }
    if (typeof value === "number") {
        if (!Number.isFinite(value)) {
            throw new Error(`postgresql.conf: ${value} is not a finite number`);
        }
        return String(value);
    }
    return postgresConfLiteral(value);
}

const PARAMETER_NAME = /^[a-z_][a-z0-9_.]*$/;

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
