// An etcd member's config file (`etcd --config-file`), as plain data from the
// topology: TLS with client-certificate authentication on the client and the
// peer port, both checked against the stack's CA, and metrics on a port of
// their own that serves nothing else.
import { ETCD_CLIENT_PORT, ETCD_METRICS_PORT, ETCD_PEER_PORT } from "../../settings";
import type { EtcdMember } from "../../topology";
import { ETCD_DATA_DIR, ETCD_TLS_FILES, FILES } from "../paths";
import { renderYaml, type YamlValue } from "../yaml";

/** The URL clients (Patroni, etcdctl) reach a member on; its host is a name the member's certificate carries. */
export function etcdClientUrl(member: EtcdMember): string {
    return `https://${member.container}:${ETCD_CLIENT_PORT}`;
}

function peerUrl(member: EtcdMember): string {
    return `https://${member.container}:${ETCD_PEER_PORT}`;
}

export interface EtcdConfSpec {
    readonly member: EtcdMember;
    /** Every member of the cluster, this one included. */
    readonly members: readonly EtcdMember[];
    /** Tells this cluster's members from any other's that might reach them. */
    readonly clusterToken: string;
}

/** The same certificate serves and, towards the other members, authenticates. */
const TRANSPORT_SECURITY = {
    "cert-file": ETCD_TLS_FILES.cert,
    "key-file": ETCD_TLS_FILES.key,
    "trusted-ca-file": FILES.tlsCa,
    "client-cert-auth": true,
};

export function etcdConf(spec: EtcdConfSpec): Record<string, YamlValue> {
    return {
        name: spec.member.name,
        "data-dir": ETCD_DATA_DIR,
        "listen-client-urls": `https://0.0.0.0:${ETCD_CLIENT_PORT}`,
        "advertise-client-urls": etcdClientUrl(spec.member),
        "listen-peer-urls": `https://0.0.0.0:${ETCD_PEER_PORT}`,
        "initial-advertise-peer-urls": peerUrl(spec.member),
        // Read at the first start only: on a volume that has data, etcd takes its membership from there.
        "initial-cluster": spec.members.map((m) => `${m.name}=${peerUrl(m)}`).join(","),
        "initial-cluster-state": "new",
        "initial-cluster-token": spec.clusterToken,
        // Plain HTTP, and only /metrics and /health: the keys stay behind the client port's certificates.
        "listen-metrics-urls": `http://0.0.0.0:${ETCD_METRICS_PORT}`,
        "client-transport-security": TRANSPORT_SECURITY,
        "peer-transport-security": TRANSPORT_SECURITY,
        "tls-min-version": "TLS1.2",
        // The DCS rewrites a few keys every loop; keeping one hour of history bounds the database.
        "auto-compaction-mode": "periodic",
        "auto-compaction-retention": "1h",
        logger: "zap",
        "log-outputs": ["stderr"],
    };
}

export function renderEtcdConf(spec: EtcdConfSpec): string {
    return renderYaml(`etcd member ${spec.member.name}, rendered by obcms-database`, etcdConf(spec));
}
