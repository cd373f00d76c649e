// Shell lines shared by the commands, run where Pulumi runs, that write a file
// to PgBouncer's volume and have a running PgBouncer take it.
import { PGBOUNCER_PORT, ROLES } from "../../settings";
import { shellWord } from "../escape";
import { FILES, PGBOUNCER_RELOADABLE_DIR, SERVICE_UID, SOCKET_DIR } from "../paths";

/** The environment variable that names the image the commands write files with. */
export const IMAGE_VARIABLE = "IMAGE";

export interface ReloadTarget {
    /** PgBouncer's container. */
    readonly container: string;
    /** The named volume mounted at PGBOUNCER_RELOADABLE_DIR. */
    readonly volume: string;
}

/**
 * Runs `script` (sh) in a throwaway container of the image, as PgBouncer's
 * user with its volume mounted and no network, with what the shell variable
 * `variable` holds on its standard input.
 */
export function onVolume(target: ReloadTarget, variable: string, script: string): string {
    return (
        `printf '%s\\n' "$${variable}" | docker run --rm -i --network none --user ${SERVICE_UID}:${SERVICE_UID} ` +
        `--volume ${shellWord(`${target.volume}:${PGBOUNCER_RELOADABLE_DIR}`)} --entrypoint sh "$${IMAGE_VARIABLE}" -c ${shellWord(script)}`
    );
}

/**
 * Writes what the shell variable `variable` holds to `file` on the volume,
 * by rename so that PgBouncer never reads half a file; `private` makes it 0600.
 */
export function writeToVolume(target: ReloadTarget, file: string, variable: string, options: { private?: boolean } = {}): string {
    return onVolume(target, variable, `${options.private ? "umask 077 && " : ""}cat > ${file}.new && mv ${file}.new ${file}`);
}

/** A shell condition: PgBouncer's container is running (before the stack's first `pulumi up` has made it, it is not). */
export function pgbouncerRunning(target: ReloadTarget): string {
    return `[ "$(docker container inspect --format '{{.State.Running}}' ${shellWord(target.container)} 2>/dev/null || true)" = true ]`;
}

/** `admin SQL`: one command on PgBouncer's admin console, over its socket inside its container, values bare. */
export function adminFunction(target: ReloadTarget): string {
    const psql = [
        "psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-h",
        SOCKET_DIR,
        "-p",
        String(PGBOUNCER_PORT),
        "-U",
        ROLES.pgbouncerAdmin,
        "-d",
        "pgbouncer",
    ];
    return `admin() { docker exec -e PGPASSFILE=${shellWord(FILES.pgpass)} ${shellWord(target.container)} ${psql.map(shellWord).join(" ")} -c "$1"; }`;
}
