// The command, run where Pulumi runs, that puts a member's certificate and
// key on its data volume and has Patroni, PostgreSQL and pgBackRest's TLS
// server take them without a restart: a renewal replaces no member.
import { type ClusterSettings, PATRONI_REST_PORT, POSTGRES_PORT } from "../../settings";
import type { PostgresMember } from "../../topology";
import { shellWord } from "../escape";
import { FILES, MEMBER_TLS_FILES, VOLUME_DIR } from "../paths";
import { signalPgbackrestListener } from "../pgbackrest/certificate-command";
import { PGBACKREST_TLS_PORT } from "../pgbackrest/pgbackrest";
import { certificateCommand } from "../tls/certificate-command";
import type { VolumeTarget } from "../volume-command";

/** The member's container and its data volume, where its certificate lives. */
function memberVolumeTarget(member: PostgresMember): VolumeTarget {
    return { container: member.container, volume: member.volume, mountPath: VOLUME_DIR };
}

/**
 * Patroni 4.0.7 acts on SIGHUP at the start of its next cycle (daemon.py):
 * it has PostgreSQL reload, which reads the ssl files again, and restarts
 * its REST API's listener when the certificate's serial changed
 * (api.py: reload_local_certificate). Its etcd client loads the pair for
 * each new connection. pgBackRest's TLS server reloads on its own SIGHUP; its
 * client, archive-push and archive-get, is a new process each time. The
 * check waits out a cycle: `loop_wait`, and `retry_timeout` more when the
 * cycle waits on etcd.
 */
export function memberCertificateCommand(s: ClusterSettings, member: PostgresMember): string {
    const container = shellWord(member.container);
    return certificateCommand(memberVolumeTarget(member), MEMBER_TLS_FILES, {
        service: `member ${member.node}`,
        configFile: FILES.patroniConf,
        reload: [`docker exec ${container} pkill -HUP -x patroni`, signalPgbackrestListener(member.container)],
        handshakes: [
            ["-starttls", "postgres", "-connect", `127.0.0.1:${POSTGRES_PORT}`],
            ["-connect", `127.0.0.1:${PATRONI_REST_PORT}`],
            ["-connect", `127.0.0.1:${PGBACKREST_TLS_PORT}`],
        ],
        reloadWithinSeconds: s.failover.loopWaitSeconds + s.failover.retryTimeoutSeconds,
    });
}
