import { pgbouncerConnstringValue, pgbouncerIniValue } from "../escape";

export type IniValue = string | number;

export interface PgbouncerIni {
    /** Database name → libpq-style connection parameters. */
    readonly databases: Readonly<Record<string, Readonly<Record<string, IniValue>>>>;
    /** The `[pgbouncer]` section. */
    readonly settings: Readonly<Record<string, IniValue>>;
    /**
     * A file of further `[pgbouncer]` settings, included at the section's top:
     * a setting here wins over one there, as PgBouncer reads in order.
     */
    readonly include?: string;
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

const ABSOLUTE_PATH = /^\/[A-Za-z0-9_./-]+$/;

function settingLines(settings: Readonly<Record<string, IniValue>>): string[] {
    return sorted(settings).map(([key, value]) => `${name("setting", key)} = ${pgbouncerIniValue(String(value))}`);
}

/** pgbouncer.ini with both sections' keys sorted, so equal input renders equal bytes. */
export function renderPgbouncerIni(ini: PgbouncerIni): string {
    const databases = sorted(ini.databases).map(([db, params]) => {
        const connstring = sorted(params)
            .map(([key, value]) => `${name("connection parameter", key)}=${pgbouncerConnstringValue(String(value))}`)
            .join(" ");
        return `${name("database name", db)} = ${connstring}`;
    });
    if (ini.include !== undefined && !ABSOLUTE_PATH.test(ini.include)) {
        throw new Error(`pgbouncer.ini: ${JSON.stringify(ini.include)} is not an absolute path PgBouncer can include`);
    }
    return [
        "; Rendered by obcms-database; changes here are overwritten.",
        "[databases]",
        ...databases,
        "",
        "[pgbouncer]",
        ...(ini.include === undefined ? [] : [`%include ${ini.include}`]),
        ...settingLines(ini.settings),
        "",
    ].join("\n");
}

/** The settings of an included file, keys sorted, for the section that includes it. */
export function renderPgbouncerIncluded(settings: Readonly<Record<string, IniValue>>): string {
    return ["; Rendered by obcms-database; PgBouncer takes these by RELOAD.", ...settingLines(settings), ""].join("\n");
}
