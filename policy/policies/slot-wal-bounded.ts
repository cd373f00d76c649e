import type { ResourceValidationPolicy } from "@pulumi/policy";
import { postgresqlConf, validateContainer } from "./containers";

export const slotWalBounded: ResourceValidationPolicy = {
    name: "slot-wal-bounded",
    description:
        "Every PostgreSQL server sets max_slot_wal_keep_size, so a replication slot whose replica is gone cannot keep WAL until the disk is full.",
    enforcementLevel: "mandatory",
    validateResource: validateContainer((props, _args, reportViolation) => {
        const conf = postgresqlConf(props);
        if (conf === undefined) {
            return;
        }
        // -1, PostgreSQL's default, lets a slot keep WAL without limit.
        const value = conf.get("max_slot_wal_keep_size") ?? "-1";
        if (value === "-1") {
            reportViolation(
                "postgresql.conf leaves max_slot_wal_keep_size at -1 (unlimited): a slot whose replica is gone keeps WAL until the disk is full (maxSlotWalKeepSizeMb)",
            );
        }
    }),
};
