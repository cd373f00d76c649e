// What every container's scripts share: the header of a start script, and the
// preflight check each container runs before it.
import { shellWord } from "./escape";
import { CONFIG_DIR } from "./paths";

/** Every script starts so: sh, stop on the first error or unset variable. */
const SCRIPT_PREAMBLE = ["#!/bin/sh", "# Rendered by obcms-database.", "set -eu"];

/** The first lines of every start script. */
export function scriptHeader(): string[] {
    return [
        ...SCRIPT_PREAMBLE,
        // Debian's layout for PostgreSQL 17, the version the cluster runs.
        'export PATH="/usr/lib/postgresql/17/bin:$PATH"',
    ];
}

/**
 * A start-script line that keeps `command` running for the container's
 * lifetime, restarting it a second after it exits, in a double-forked loop:
 * the loop is adopted by PID 1 (tini), not by the process the script then
 * execs, which would neither reap it nor expect it.
 */
export function supervisedLine(name: string, command: string): string {
    return `( (until false; do ${command} || true; echo ${shellWord(`${name} exited; restarting it`)} >&2; sleep 1; done) </dev/null & )`;
}

/** Where the readable-files check is uploaded; the container's entrypoint runs it, and it hands over to the start script. */
export const PREFLIGHT_FILE = `${CONFIG_DIR}/preflight.sh`;

/**
 * The container's first script: every uploaded file must be readable by the
 * service user, or the container stops at once with a message naming the
 * file, its owner and mode (an engine or provider that uploads files owned by
 * root would otherwise surface later as a service's own, vaguer error). Then
 * the start script takes over.
 */
export function renderPreflight(files: readonly string[], startScript: string): string {
    return [
        ...SCRIPT_PREAMBLE,
        `for file in ${files.map(shellWord).join(" ")}; do`,
        '  if [ ! -r "$file" ]; then',
        '    echo "obcms: $file is not readable by uid $(id -u) (owner $(stat -c %u:%g "$file" 2>/dev/null || echo missing), mode $(stat -c %a "$file" 2>/dev/null || echo -)): uploads must arrive owned by the service user; check the Docker provider\'s upload owner and group" >&2',
        "    exit 78",
        "  fi",
        "done",
        `exec /bin/sh ${shellWord(startScript)}`,
        "",
    ].join("\n");
}
