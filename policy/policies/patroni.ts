// How the policies see a PostgreSQL server: a container that carries
// Patroni's configuration, patroni.yml. Patroni starts PostgreSQL with a
// postgresql.conf of its own that includes the file `postgresql.custom_conf`
// names and then sets Patroni's parameters: those of the dynamic
// configuration (`bootstrap.dcs`, which the cluster starts with), overridden
// by the member's own `postgresql.parameters` (Patroni 4.0.7:
// patroni/config.py, _build_effective_configuration;
// patroni/postgresql/config.py, write_postgresql_conf and replace_pg_hba).
// patroni.yml holds passwords: no message quotes its text.
import { posix } from "node:path";
import type { ReportViolation, ResourceValidation, ResourceValidationArgs } from "@pulumi/policy";
import { parseDocument } from "yaml";
import { basename, CONTAINER, uploadedAt, uploadedText, uploads } from "./containers";
import { type HbaLine, parsePgHba, parsePostgresqlConf } from "./parse";

export const PATRONI_CONF = "patroni.yml";

/** A PostgreSQL server as Patroni runs it. */
export interface PostgresServer {
    /** patroni.yml, parsed. */
    readonly config: Record<string, any>;
    /** The member's name: its application name, and the `instance` label of its series. */
    readonly name?: string;
    /** `postgresql.data_dir`. */
    readonly dataDir?: string;
    /** The parameters PostgreSQL runs with: name (lower case) → value. */
    readonly parameters: Map<string, string>;
    /** The pg_hba.conf PostgreSQL reads; its rules undefined when neither the container nor patroni.yml holds them. */
    readonly hba: { readonly file: string; readonly lines: HbaLine[] | undefined };
}

/** A mapping of a YAML document; {} for anything else. */
export function asObject(value: unknown): Record<string, any> {
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, any>) : {};
}

/**
 * YAML as Patroni and patronictl read it (PyYAML: YAML 1.1, where `on` is
 * true, and a repeated key wins). When it does not parse, why, in words that
 * do not quote the text: the parser's messages do, and the text holds passwords.
 */
export function parsePatroniYaml(text: string): { config: Record<string, any> } | { invalid: string } {
    const document = parseDocument(text, { version: "1.1", uniqueKeys: false, prettyErrors: false });
    const error = document.errors[0];
    if (error === undefined) {
        try {
            return { config: asObject(document.toJS()) };
        } catch {
            // An alias without its anchor, which the message would name.
        }
    }
    const line = error === undefined ? "" : ` (line ${text.slice(0, error.pos[0]).split("\n").length})`;
    return { invalid: `is not valid YAML${line}` };
}

/** Whether a container runs a Patroni member, by its files' names only: known at preview, unlike their contents. */
export function carriesPatroniConf(props: Record<string, any>): boolean {
    return uploads(props).some((u) => basename(u.file) === PATRONI_CONF);
}

/** Patroni writes a YAML boolean as a boolean parameter; on/off is how PostgreSQL shows one. */
function parameterValue(value: unknown): string {
    return typeof value === "boolean" ? (value ? "on" : "off") : String(value);
}

/** Patroni's parameters, names case-insensitive as in PostgreSQL; a null value is not written. */
export function patroniParameters(...layers: unknown[]): Map<string, string> {
    const parameters = new Map<string, string>();
    for (const layer of layers) {
        for (const [name, value] of Object.entries(asObject(layer))) {
            if (value !== null && value !== undefined) {
                parameters.set(name.toLowerCase(), parameterValue(value));
            }
        }
    }
    return parameters;
}

function postgresServer(props: Record<string, any>, config: Record<string, any>): PostgresServer {
    const dynamic = asObject(asObject(asObject(config.bootstrap).dcs).postgresql);
    const local = asObject(config.postgresql);
    // Local settings override the dynamic ones, key by key; the parameters are merged.
    const postgresql = { ...dynamic, ...local };
    const fromPatroni = patroniParameters(dynamic.parameters, local.parameters);
    // Patroni writes its files, and PostgreSQL resolves relative paths, in config_dir (the data directory by default).
    const configDir = String(postgresql.config_dir || postgresql.data_dir || "");
    const at = (path: string) => (posix.isAbsolute(path) ? path : posix.join(configDir, path));

    const customConf = typeof postgresql.custom_conf === "string" ? uploadedAt(props, at(postgresql.custom_conf)) : undefined;
    const parameters = new Map([...parsePostgresqlConf(customConf ?? ""), ...fromPatroni]);
    // hba_file from custom_conf does not count: Patroni writes its own after the include, unless its parameters set one.
    const hbaFile = fromPatroni.get("hba_file");
    const hba =
        hbaFile !== undefined
            ? { file: at(hbaFile), lines: textRules(uploadedAt(props, at(hbaFile))) }
            : {
                  file: at("pg_hba.conf"),
                  lines: Array.isArray(postgresql.pg_hba) ? parsePgHba(postgresql.pg_hba.map(String).join("\n")) : undefined,
              };
    parameters.set("hba_file", hba.file);
    return {
        config,
        name: typeof config.name === "string" ? config.name : undefined,
        dataDir: typeof postgresql.data_dir === "string" ? postgresql.data_dir : undefined,
        parameters,
        hba,
    };
}

function textRules(text: string | undefined): HbaLine[] | undefined {
    return text === undefined ? undefined : parsePgHba(text);
}

/**
 * The PostgreSQL server a container runs under Patroni, or why its
 * patroni.yml cannot be read; undefined for any other container.
 */
export function readPostgresServer(props: Record<string, any>): PostgresServer | { invalid: string } | undefined {
    const text = uploadedText(props, PATRONI_CONF);
    if (text === undefined) {
        return undefined;
    }
    const parsed = parsePatroniYaml(text);
    return "config" in parsed
        ? postgresServer(props, parsed.config)
        : { invalid: `${PATRONI_CONF} ${parsed.invalid}: Patroni cannot start, and this check cannot run` };
}

/** A check of the PostgreSQL server a container runs under Patroni; other resources are not its business. */
export function validatePostgresServer(
    check: (server: PostgresServer, args: ResourceValidationArgs, reportViolation: ReportViolation) => void,
): ResourceValidation {
    return (args, reportViolation) => {
        const server = args.type === CONTAINER ? readPostgresServer(args.props) : undefined;
        if (server === undefined) {
            return;
        }
        if ("invalid" in server) {
            reportViolation(server.invalid);
            return;
        }
        check(server, args, reportViolation);
    };
}
