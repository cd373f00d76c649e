// How the policies see a Docker container of this program: by the files it
// carries (postgresql.conf makes a PostgreSQL server, pgbouncer.ini a
// PgBouncer, etcd.yml an etcd member), not by its name. Only the fields a
// check needs are read: at preview, a value computed by another resource (a
// password verifier, a key) is unknown, and reading it makes the SDK report
// that the check could not run.
import type { ReportViolation, ResourceValidation, ResourceValidationArgs } from "@pulumi/policy";
import { parse } from "yaml";
import { type HbaLine, parseIni, parsePgHba, parsePostgresqlConf } from "./parse";

export const CONTAINER = "docker:index/container:Container";
export const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";

/** A file uploaded into a container (`uploads` of docker.Container). */
export interface Upload {
    readonly file: string;
    readonly content?: string;
    readonly permissions?: string;
    readonly owner?: string;
    readonly group?: string;
}

export function basename(path: string): string {
    return path.slice(path.lastIndexOf("/") + 1);
}

export function uploads(props: Record<string, any>): Upload[] {
    return props.uploads ?? [];
}

/** The text of the upload with this file name (a container carries each name once; the last one wins). */
export function uploadedText(props: Record<string, any>, name: string): string | undefined {
    const found = uploads(props).filter((u) => basename(u.file) === name);
    return found.length > 0 ? (found[found.length - 1].content ?? "") : undefined;
}

/** postgresql.conf of a PostgreSQL container; undefined for any other container. */
export function postgresqlConf(props: Record<string, any>): Map<string, string> | undefined {
    const text = uploadedText(props, "postgresql.conf");
    return text === undefined ? undefined : parsePostgresqlConf(text);
}

/**
 * The pg_hba.conf a PostgreSQL container's server reads (`hba_file`), parsed,
 * or `lines` undefined when the container does not carry it; undefined for
 * any other container.
 */
export function pgHba(props: Record<string, any>): { file: string; lines: HbaLine[] | undefined } | undefined {
    const conf = postgresqlConf(props);
    if (conf === undefined) {
        return undefined;
    }
    const file = conf.get("hba_file") ?? "pg_hba.conf";
    const text = uploadedText(props, basename(file));
    return { file, lines: text === undefined ? undefined : parsePgHba(text) };
}

/** The `[pgbouncer]` section of a PgBouncer container's pgbouncer.ini; undefined for any other container. */
export function pgbouncerSettings(props: Record<string, any>): Map<string, string> | undefined {
    const text = uploadedText(props, "pgbouncer.ini");
    return text === undefined ? undefined : (parseIni(text).get("pgbouncer") ?? new Map<string, string>());
}

/** An etcd member's config, the `etcd.yml` it carries, parsed; undefined for any other container. */
export function etcdConfig(props: Record<string, any>): Record<string, any> | undefined {
    const text = uploadedText(props, "etcd.yml");
    return text === undefined ? undefined : (parse(text) ?? {});
}

/** A check of one Docker container; other resource types are not its business. */
export function validateContainer(
    check: (props: Record<string, any>, args: ResourceValidationArgs, reportViolation: ReportViolation) => void,
): ResourceValidation {
    return (args, reportViolation) => {
        if (args.type === CONTAINER) {
            check(args.props, args, reportViolation);
        }
    };
}
