import { type ClusterSettings, ROLES } from "../../settings";
import type { HbaRule } from "./pg-hba";

/**
 * pg_hba.conf rules: peer on the local socket (the start script and operators'
 * `docker exec`), replication only for the replication role over TLS from the
 * cluster's own network, the replication role nowhere else, everyone else by
 * password — over TLS only when clients are required to use it.
 */
export function hbaSections(s: ClusterSettings): Array<{ title: string; rules: HbaRule[] }> {
    const clients = s.clientTlsSslmode === "require" ? "hostssl" : "host";
    return [
        {
            title: "Local socket: operating-system user must match the role",
            rules: [{ type: "local", database: "all", user: "all", method: "peer" }],
        },
        {
            title: "Streaming replication: the replication role, from the cluster network only",
            rules: [
                { type: "hostssl", database: "replication", user: ROLES.replication, address: "samenet", method: s.authMethod },
                { type: "host", database: "replication", user: "all", address: "all", method: "reject" },
                { type: "host", database: "all", user: ROLES.replication, address: "all", method: "reject" },
            ],
        },
        {
            title: clients === "hostssl" ? "Everything else: password, over TLS only" : "Everything else: password",
            rules: [{ type: clients, database: "all", user: "all", address: "all", method: s.authMethod }],
        },
    ];
}
