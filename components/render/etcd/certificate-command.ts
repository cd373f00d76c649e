// The command, run where Pulumi runs, that puts an etcd member's certificate
// and key on its volume: a renewed certificate restarts no member.
import { ETCD_CLIENT_PORT } from "../../settings";
import type { EtcdMember } from "../../topology";
import { ETCD_FILES, ETCD_TLS_FILES, ETCD_VOLUME_DIR } from "../paths";
import { certificateCommand } from "../tls/certificate-command";
import type { VolumeTarget } from "../volume-command";

/** The member's container and its data volume, where its certificate lives. */
function etcdVolumeTarget(member: EtcdMember): VolumeTarget {
    return { container: member.container, volume: member.volume, mountPath: ETCD_VOLUME_DIR };
}

/**
 * etcd 3.5 loads its certificate and key at every TLS handshake, client and
 * peer alike (client/pkg/transport/listener.go: GetCertificate,
 * GetClientCertificate), so nothing reloads: a handshake on the client port,
 * presenting the member's own certificate as etcd requires, must show the new one.
 */
export function etcdCertificateCommand(member: EtcdMember): string {
    const { cert, key } = ETCD_TLS_FILES;
    return certificateCommand(etcdVolumeTarget(member), ETCD_TLS_FILES, {
        service: `etcd member ${member.name}`,
        configFile: ETCD_FILES.conf,
        reload: [],
        handshakes: [["-connect", `127.0.0.1:${ETCD_CLIENT_PORT}`, "-cert", cert, "-key", key]],
    });
}
