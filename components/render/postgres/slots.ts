// Shell commands, run where Pulumi runs, that keep each replica's slot on the primary.
import type { PostgresMember, ReplicaMember } from "../../topology";
import { shellWord, sqlLiteral } from "../escape";

/** Runs SQL as the superuser over the primary's local socket, from wherever Pulumi runs. */
function primarySql(primary: PostgresMember, sql: string): string {
    return `docker exec -u postgres ${shellWord(primary.container)} psql -X -q -v ON_ERROR_STOP=1 -d postgres -c ${shellWord(sql)}`;
}

/** Creates the replica's slot on the primary if it does not exist yet. */
export function createSlotCommand(primary: PostgresMember, replica: ReplicaMember): string {
    const slot = sqlLiteral(replica.slot);
    return primarySql(
        primary,
        `SELECT pg_create_physical_replication_slot(${slot}) WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = ${slot})`,
    );
}

/**
 * Drops the replica's slot, so the primary stops keeping WAL for a replica
 * that is gone. The replica is removed first; its WAL sender may take a moment
 * to exit, while the slot is still active, hence the bounded retry. With no
 * primary container there is no slot left to drop.
 */
export function dropSlotCommand(primary: PostgresMember, replica: ReplicaMember): string {
    const slot = sqlLiteral(replica.slot);
    const drop = primarySql(primary, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${slot}`);
    return [
        `docker container inspect ${shellWord(primary.container)} >/dev/null 2>&1 || exit 0`,
        `for attempt in $(seq 1 30); do ${drop} && exit 0; sleep 1; done`,
        "exit 1",
    ].join("\n");
}
