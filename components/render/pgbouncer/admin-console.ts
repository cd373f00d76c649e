// PgBouncer's admin console, for the commands that have a running PgBouncer
// take what they wrote to its volume.
import { PGBOUNCER_PORT, ROLES } from "../../settings";
import { shellWord } from "../escape";
import { FILES, SOCKET_DIR } from "../paths";
import type { VolumeTarget } from "../volume-command";

/** `admin SQL`: one command on PgBouncer's admin console, over its socket inside its container, values bare. */
export function adminFunction(target: VolumeTarget): string {
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
