import { pgbouncerConnstringValue, pgbouncerIniValue } from "../escape";

export type IniValue = string | number;

export interface PgbouncerIni {
    /** Database name → libpq-style connection parameters. */
    readonly databases: Readonly<Record<string, Readonly<Record<string, IniValue>>>>;
    /** The `[pgbouncer]` section. */
    readonly settings: Readonly<Record<string, IniValue>>;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

function name(kind: string, value: string): string {
    if (!NAME.test(value)) {
        throw new Error(`pgbouncer.ini: ${JSON.stringify(value)} is not a valid ${kind}`);
    }
    return value;
}

function sorted<T>(record: Readonly<Record<string, T>>): Array<[string, T]> {
    return Object.keys(record)
        .sort()
        .map((key) => [key, record[key]]);
}

/** pgbouncer.ini with both sections' keys sorted, so equal input renders equal bytes. */
export function renderPgbouncerIni(ini: PgbouncerIni): string {
    const databases = sorted(ini.databases).map(([db, params]) => {
        const connstring = sorted(params)
            .map(([key, value]) => `${name("connection parameter", key)}=${pgbouncerConnstringValue(String(value))}`)
            .join(" ");
        return `${name("database name", db)} = ${connstring}`;
    });
    const settings = sorted(ini.settings).map(([key, value]) => `${name("setting", key)} = ${pgbouncerIniValue(String(value))}`);
    return [
        "; Rendered by obcms-database; changes here are overwritten.",
        "[databases]",
        ...databases,
        "",
        "[pgbouncer]",
        ...settings,
        "",
    ].join("\n");
}
