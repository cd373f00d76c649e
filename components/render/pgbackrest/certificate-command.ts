// The command, run where Pulumi runs, that puts the backup container's
// certificate and key on their volume and has its pgBackRest TLS server take
// them by SIGHUP: a renewed certificate neither replaces the container nor
// stops a running backup.
import type { ClusterSettings } from "../../settings";
import { clusterTopology } from "../../topology";
import { shellWord } from "../escape";
import { BACKUP_TLS_DIR, BACKUP_TLS_FILES, PGBACKREST_FILES } from "../paths";
import { certificateCommand } from "../tls/certificate-command";
import type { VolumeTarget } from "../volume-command";
import { PGBACKREST_TLS_PORT } from "./pgbackrest";

/** The backup container and the volume of its certificate. */
export function backupVolumeTarget(s: ClusterSettings): VolumeTarget {
    const { backup } = clusterTopology(s);
    return { container: backup.container, volume: backup.tlsVolume, mountPath: BACKUP_TLS_DIR };
}

/**
 * The shell line that sends SIGHUP to the listening `pgbackrest server` in
 * `container` alone. Each connection is served by a forked process with the
 * same command line, which SIGHUP would end (pgBackRest's exitInit), cutting
 * a member's archive-push or archive-get, or the backup container's copy of
 * a member's files: the listener is the one whose parent is no such process.
 */
export function signalPgbackrestListener(container: string): string {
    const lines = [
        "servers=\"$(pgrep -d ' ' -f '^pgbackrest .* server$' || true)\"",
        "for pid in $servers; do",
        "  parent=\"$(awk '/^PPid:/ { print $2 }' /proc/$pid/status 2>/dev/null || true)\"",
        '  case " $servers " in *" $parent "*) ;; *) kill -HUP "$pid" ;; esac',
        "done",
    ];
    return `docker exec ${shellWord(container)} sh -c ${shellWord(lines.join("\n"))}`;
}

/**
 * pgBackRest 2.55's server, on SIGHUP, reads its configuration and its
 * certificate files again and opens a new listener
 * (src/command/server/server.c); connections already open keep their
 * process. A pair it cannot load ends the server (the start script's loop
 * starts it again, and it fails the same way), hence the handshake. The
 * server asks for a client certificate but completes the handshake without
 * one (src/common/io/tls/server.c), so the check presents none. The
 * backups, each a new process, read the files when they start.
 */
export function backupCertificateCommand(target: VolumeTarget): string {
    return certificateCommand(target, BACKUP_TLS_FILES, {
        service: "pgBackRest's TLS server in the backup container",
        configFile: PGBACKREST_FILES.conf,
        reload: [signalPgbackrestListener(target.container)],
        handshakes: [["-connect", `127.0.0.1:${PGBACKREST_TLS_PORT}`]],
    });
}
