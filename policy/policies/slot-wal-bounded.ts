import type { ResourceValidationPolicy } from "@pulumi/policy";
import { validateDynamicConfiguration } from "./dynamic-configuration";
import { validatePostgresServer } from "./patroni";

const UNBOUNDED = "a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)";

export const slotWalBounded: ResourceValidationPolicy = {
    name: "slot-wal-bounded",
    description:
        "Every PostgreSQL server sets max_slot_wal_keep_size, and Patroni's dynamic configuration does not set it to -1, so a replication slot whose replica is gone cannot keep WAL until the disk is full.",
    enforcementLevel: "mandatory",
    validateResource: [
        validatePostgresServer(({ parameters }, _args, reportViolation) => {
            // -1, PostgreSQL's default, lets a slot keep WAL without limit.
            if ((parameters.get("max_slot_wal_keep_size") ?? "-1") === "-1") {
                reportViolation(`postgresql.conf and Patroni's parameters leave max_slot_wal_keep_size at -1 (unlimited): ${UNBOUNDED}`);
            }
        }),
        // What it leaves unset, each member's own files decide.
        validateDynamicConfiguration(({ parameters, where }, _args, reportViolation) => {
            if (parameters.get("max_slot_wal_keep_size") === "-1") {
                reportViolation(`${where} sets max_slot_wal_keep_size = -1 (unlimited): ${UNBOUNDED}`);
            }
        }),
    ],
};
