// The command, run where Pulumi runs, that puts PgBouncer's reloadable
// settings on its volume and has a running PgBouncer take them by RELOAD.
import { shellWord } from "../escape";
import { PGBOUNCER_RELOADABLE_FILE } from "../paths";
import { containerRunning, type VolumeTarget, writeToVolume } from "../volume-command";
import { adminFunction } from "./admin-console";
import type { IniValue } from "./pgbouncer-ini";

/**
 * Writes its standard input (the rendered file) to PGBOUNCER_RELOADABLE_FILE
 * on the volume. Before PgBouncer's container exists
 * (the stack's first `pulumi up`), or while it is stopped, that is all: it
 * reads the file when it starts. Otherwise PgBouncer reloads, and the command
 * fails unless SHOW CONFIG then reports every value of `settings`: a file
 * PgBouncer refuses leaves it on the old values, and RELOAD does not say so.
 */
export function pgbouncerSettingsCommand(target: VolumeTarget, settings: Readonly<Record<string, IniValue>>): string {
    const expected = Object.keys(settings)
        .sort()
        .map((key) => shellWord(`${key}|${settings[key]}`))
        .join(" ");
    return [
        "set -eu",
        'settings="$(cat)"',
        writeToVolume(target, PGBOUNCER_RELOADABLE_FILE, "settings"),
        `if ! ${containerRunning(target)}; then exit 0; fi`,
        adminFunction(target),
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
