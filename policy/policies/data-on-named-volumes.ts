import type { ResourceValidationPolicy } from "@pulumi/policy";
import { validatePostgresServer } from "./patroni";

/** Whether a mount at `mountPath` holds `directory`. */
function covers(mountPath: string, directory: string): boolean {
    return directory === mountPath || directory.startsWith(`${mountPath.replace(/\/+$/, "")}/`);
}

interface Storage {
    /** Where it is mounted in the container. */
    readonly path: string;
    /** Undefined for a named volume; otherwise what it is, for the message. */
    readonly problem?: string;
}

/** Every mount of the container, `volumes` and `mounts` alike. */
function storage(props: Record<string, any>): Storage[] {
    const volumes = ((props.volumes ?? []) as Array<Record<string, any>>).map((v) => ({
        path: v.containerPath ?? "",
        // `in`, not a read: a volume's name comes from the Volume resource and is unknown at preview.
        problem:
            v.hostPath !== undefined
                ? `host directory ${v.hostPath}`
                : v.fromContainer !== undefined || !("volumeName" in v)
                  ? "a volume of another container"
                  : undefined,
    }));
    const mounts = ((props.mounts ?? []) as Array<Record<string, any>>).map((m) => ({
        path: m.target,
        problem: m.type !== "volume" ? `a ${m.type} mount` : (m.source ?? "") === "" ? "an anonymous volume" : undefined,
    }));
    return [...volumes, ...mounts];
}

export const dataOnNamedVolumes: ResourceValidationPolicy = {
    name: "data-on-named-volumes",
    description:
        "Every PostgreSQL server keeps its data directory on a named Docker volume, which outlives the container, not in the container's own layer, a host directory or a tmpfs.",
    enforcementLevel: "mandatory",
    validateResource: validatePostgresServer(({ dataDir }, args, reportViolation) => {
        if (dataDir === undefined) {
            reportViolation("patroni.yml sets no postgresql.data_dir: Patroni cannot start, and where the data lives cannot be checked");
            return;
        }
        // The innermost mount over the data directory is the one that holds the data.
        const innermost = storage(args.props)
            .filter((m) => covers(m.path, dataDir))
            .sort((a, b) => b.path.length - a.path.length)[0];
        if (innermost === undefined) {
            reportViolation(
                `keeps PostgreSQL's data directory ${dataDir} in the container itself: it is lost with the container; mount a named volume there`,
            );
        } else if (innermost.problem !== undefined) {
            reportViolation(
                `keeps PostgreSQL's data directory ${dataDir} on ${innermost.problem} at ${innermost.path}; mount a named volume there`,
            );
        }
    }),
};
