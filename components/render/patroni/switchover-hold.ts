// The hold a planned switchover puts on the leader's stop. Patroni runs its
// `before_stop` command after its CHECKPOINT and just before it stops
// PostgreSQL. When `scripts/cluster.sh switchover` has armed this member, the
// command says so and waits until cluster.sh has paused PgBouncer's pools:
// clients keep committing while Patroni checks the candidate and checkpoints,
// and no transaction is cut by the fast shutdown. Unarmed (every other stop),
// it returns at once.

import { PATRONI_REST_PORT } from "../../settings";
import { shellWord } from "../escape";
import { FILES } from "../paths";

/**
 * Where cluster.sh and the hook meet in the member's container (gone with the
 * container): `armed`, written by cluster.sh before it asks for the
 * switchover, the epoch second after which the arming has lapsed;
 * `stopping`, touched by the hook when Patroni is about to stop PostgreSQL,
 * when cluster.sh pauses the pools; `paused`, touched by cluster.sh once
 * PgBouncer has paused, when the stop goes ahead.
 */
export const SWITCHOVER_HOLD_DIR = "/tmp/obcms-switchover";

/**
 * The longest the hook holds a stop: a transaction still running when it ends
 * is cut by the shutdown, as a switchover without the hold would cut it.
 * PgBouncer's PAUSE takes milliseconds under short transactions.
 */
export const SWITCHOVER_HOLD_SECONDS = 5;

/** How often the hook looks for `paused`, and every how many looks it asks Patroni whether it still holds the leader key. */
const LOOK_SECONDS = 0.01;
const LOOKS_PER_LEASE_CHECK = 10;

/**
 * Patroni's `postgresql.before_stop` command. It holds the stop only while
 * this member still holds the leader key (the REST API's `GET /leader`,
 * which answers from Patroni's lease): a leader that lost it, and is being
 * fenced, stops at once, armed or not. A lapsed arming (cluster.sh gave up
 * before Patroni stopped anything) holds nothing either.
 */
export function renderStopHold(dir: string = SWITCHOVER_HOLD_DIR): string {
    const w = shellWord;
    const armed = w(`${dir}/armed`);
    const leads = `curl -fs --max-time 1 --cacert ${w(FILES.tlsCa)} -o /dev/null https://localhost:${PATRONI_REST_PORT}/leader`;
    const script = [
        `[ -f ${armed} ] && [ "$(date +%s)" -le "$(cat ${armed})" ] || exit 0`,
        `touch ${w(`${dir}/stopping`)}`,
        `end=$(($(date +%s) + ${SWITCHOVER_HOLD_SECONDS}))`,
        "looks=0",
        `while [ ! -f ${w(`${dir}/paused`)} ] && [ "$(date +%s)" -lt "$end" ]; do ` +
            `if [ $((looks % ${LOOKS_PER_LEASE_CHECK})) -eq 0 ] && ! ${leads}; then break; fi; ` +
            `sleep ${LOOK_SECONDS}; looks=$((looks + 1)); done`,
        `rm -rf ${w(dir)}`,
    ].join("; ");
    return `sh -c ${w(script)}`;
}
