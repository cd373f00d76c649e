import type { ResourceValidationPolicy } from "@pulumi/policy";
import { validateDynamicConfiguration } from "./dynamic-configuration";
import { validatePostgresServer } from "./patroni";

const UNBOUNDED = "a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)";

export const slotWalBounded: ResourceValidationPolicy = {
    name: "slot-wal-bounded",
    description:
        "Patroni's dynamic configuration, where the stack keeps max_slot_wal_keep_size, sets it other than -1, and a server's own files set no -1 either, so a replication slot whose replica is gone cannot keep WAL until the disk is full.",
    enforcementLevel: "mandatory",
    validateResource: [
        // Unset here, the dynamic configuration decides: judged on the commands that write it.
        validatePostgresServer(({ parameters }, _args, reportViolation) => {
            if (parameters.get("max_slot_wal_keep_size") === "-1") {
                reportViolation(`postgresql.conf or Patroni's parameters set max_slot_wal_keep_size = -1 (unlimited): ${UNBOUNDED}`);
            }
        }),
        validateDynamicConfiguration(({ parameters, where, merges }, _args, reportViolation) => {
            const value = parameters.get("max_slot_wal_keep_size");
            if (value === undefined) {
                // -1, PostgreSQL's default, lets a slot keep WAL without limit.
                const unset = merges ? "etcd keeps the value it holds, which the stack does not declare" : "PostgreSQL's default, -1";
                reportViolation(`${where} leaves max_slot_wal_keep_size unset (${unset}): ${UNBOUNDED}`);
            } else if (value === "-1") {
                reportViolation(`${where} sets max_slot_wal_keep_size = -1 (unlimited): ${UNBOUNDED}`);
            }
        }),
    ],
};
