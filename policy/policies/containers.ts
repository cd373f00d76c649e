// How the policies see a Docker container of this program: by the files it
// carries (patroni.yml makes a PostgreSQL server, see patroni.ts;
// pgbouncer.ini a PgBouncer, etcd.yml an etcd member), not by its name. Only
// the fields a check needs are read: at preview, a value computed by another
// resource (a password verifier, a key) is unknown, and reading it makes the
// SDK report that the check could not run.
import type { ReportViolation, ResourceValidation, ResourceValidationArgs } from "@pulumi/policy";
import { parse } from "yaml";
import { parseIni } from "./parse";

export const CONTAINER = "docker:index/container:Container";
export const RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword";
/** A command run where Pulumi runs (`@pulumi/command` local.Command). */
export const LOCAL_COMMAND = "command:local:Command";

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

/** The text of the last of these uploads (a container carries each file once; the last one wins). */
function lastText(found: readonly Upload[]): string | undefined {
    return found.length > 0 ? (found[found.length - 1].content ?? "") : undefined;
}

/** The text of the upload with this file name, wherever it is. */
export function uploadedText(props: Record<string, any>, name: string): string | undefined {
    return lastText(uploads(props).filter((u) => basename(u.file) === name));
}

/** The text of the upload at this absolute path, or undefined when the container does not carry it. */
export function uploadedAt(props: Record<string, any>, path: string): string | undefined {
    return lastText(uploads(props).filter((u) => u.file === path));
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
