// An etcd member's start script and health check.
import { ETCD_CLIENT_PORT } from "../../settings";
import { shellWord } from "../escape";
import { ETCD_FILES, ETCD_TLS_FILES, FILES } from "../paths";
import { scriptHeader } from "../shell-scripts";

export function renderEtcdStart(): string {
    return [...scriptHeader(), `exec etcd --config-file=${shellWord(ETCD_FILES.conf)}`, ""].join("\n");
}

/** etcdctl against the member in this container, presenting its own certificate. */
export function localEtcdctl(): string[] {
    return [
        "etcdctl",
        `--endpoints=https://localhost:${ETCD_CLIENT_PORT}`,
        `--cacert=${FILES.tlsCa}`,
        `--cert=${ETCD_TLS_FILES.cert}`,
        `--key=${ETCD_TLS_FILES.key}`,
        "--dial-timeout=2s",
    ];
}

/**
 * The container's health check: the member answers on its client port, with
 * its own certificate, and the cluster commits a proposal through it, which
 * needs a leader and a quorum.
 */
export function etcdHealthCheck(): string[] {
    return [...localEtcdctl(), "--command-timeout=3s", "endpoint", "health"];
}
