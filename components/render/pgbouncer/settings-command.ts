// The command, run where Pulumi runs, that puts PgBouncer's reloadable
// settings on its volume and has a running PgBouncer take them by RELOAD.
import { PGBOUNCER_PORT, ROLES } from "../../settings";
import { shellWord } from "../escape";
import { FILES, PGBOUNCER_RELOADABLE_DIR, PGBOUNCER_RELOADABLE_FILE, SERVICE_UID, SOCKET_DIR } from "../paths";
import type { IniValue } from "./pgbouncer-ini";

/** The environment variable that names the image the command writes the file with. */
export const IMAGE_VARIABLE = "IMAGE";

export interface ReloadTarget {
    /** PgBouncer's container. */
    readonly container: string;
    /** The named volume mounted at PGBOUNCER_RELOADABLE_DIR. */
    readonly volume: string;
}

/**
 * Writes its standard input (the rendered file) to PGBOUNCER_RELOADABLE_FILE
 * on the volume, from a throwaway container of the image, by rename so that
 * PgBouncer never reads half a file. Before PgBouncer's container exists
 * (the stack's first `pulumi up`), or while it is stopped, that is all: it
 * reads the file when it starts. Otherwise PgBouncer reloads, and the command
 * fails unless SHOW CONFIG then reports every value of `settings`: a file
 * PgBouncer refuses leaves it on the old values, and RELOAD does not say so.
 */
export function pgbouncerSettingsCommand(target: ReloadTarget, settings: Readonly<Record<string, IniValue>>): string {
    const container = shellWord(target.container);
    const write = `cat > ${PGBOUNCER_RELOADABLE_FILE}.new && mv ${PGBOUNCER_RELOADABLE_FILE}.new ${PGBOUNCER_RELOADABLE_FILE}`;
    const admin = [
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
    const expected = Object.keys(settings)
        .sort()
        .map((key) => shellWord(`${key}|${settings[key]}`))
        .join(" ");
    return [
        "set -eu",
        'settings="$(cat)"',
        `printf '%s\\n' "$settings" | docker run --rm -i --network none --user ${SERVICE_UID}:${SERVICE_UID} ` +
            `--volume ${shellWord(`${target.volume}:${PGBOUNCER_RELOADABLE_DIR}`)} --entrypoint sh "$${IMAGE_VARIABLE}" -c ${shellWord(write)}`,
        `if [ "$(docker container inspect --format '{{.State.Running}}' ${container} 2>/dev/null || true)" != true ]; then exit 0; fi`,
        `admin() { docker exec -e PGPASSFILE=${shellWord(FILES.pgpass)} ${container} ${admin.map(shellWord).join(" ")} -c "$1"; }`,
        "admin RELOAD",
        'config="$(admin "SHOW CONFIG")"',
        `for setting in ${expected}; do`,
        '  key="${setting%%|*}" value="${setting#*|}"',
        `  if ! printf '%s\\n' "$config" | awk -F'|' -v key="$key" -v value="$value" '$1 == key && $2 == value { found = 1 } END { exit !found }'; then`,
        `    echo "PgBouncer did not take $key = $value on RELOAD; its log says why" >&2`,
        "    exit 1",
        "  fi",
        "done",
        "",
    ].join("\n");
}
