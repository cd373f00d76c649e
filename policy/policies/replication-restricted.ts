import type { ResourceValidationPolicy } from "@pulumi/policy";
import { validatePostgresServer } from "./patroni";

const ANY_ADDRESS = new Set(["all", "0.0.0.0/0", "::/0", "0.0.0.0/0.0.0.0"]);

export const replicationRestricted: ResourceValidationPolicy = {
    name: "replication-restricted",
    description:
        "pg_hba.conf lets replication connections in only for named roles, over TLS, from the cluster's network or a given range, never from any address.",
    enforcementLevel: "mandatory",
    validateResource: validatePostgresServer(({ hba }, _args, reportViolation) => {
        for (const line of hba.lines ?? []) {
            if (line.type === "local" || line.method === "reject" || !line.database.split(",").includes("replication")) {
                continue;
            }
            const rule = `pg_hba.conf line ${line.lineNumber} "${line.text}"`;
            if (ANY_ADDRESS.has(line.address ?? "all")) {
                reportViolation(`${rule} accepts replication connections from any address; allow samenet or the cluster's range only`);
            }
            if (line.user.split(",").includes("all")) {
                reportViolation(`${rule} accepts replication connections for every role; allow the replication role only`);
            }
            if (line.type !== "hostssl") {
                reportViolation(`${rule} accepts replication connections without TLS; use hostssl`);
            }
        }
    }),
};
