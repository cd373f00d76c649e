// The dynamic configuration a new cluster starts with, written into etcd
// before any member starts. Patroni reads its dynamic configuration from the
// DCS when the key is there, and from patroni.yml's `bootstrap.dcs` only when
// it is not (patroni/__main__.py, apply_dynamic_configuration); seeded here,
// it stays out of patroni.yml, so a change to it replaces no member.
import type { EtcdMember } from "../../topology";
import { shellWord } from "../escape";
import { localEtcdctl } from "../etcd/start-script";

/** Patroni's namespace in etcd (its default), under which each cluster's keys live by scope. */
export const PATRONI_NAMESPACE = "/service";

/** The key holding a cluster's dynamic configuration, as Patroni's `config_path` builds it. */
export function dynamicConfigKey(scope: string): string {
    return `${PATRONI_NAMESPACE}/${scope}/config`;
}

/** How many times the seed tries the etcd members, 2 s apart, before it fails. */
export const SEED_ATTEMPTS = 30;

/**
 * Writes the JSON on its standard input to the config key, through the first
 * etcd member that answers, unless the key exists: a running cluster's
 * configuration is changed through Patroni (see leader-commands.ts), never
 * overwritten here.
 */
export function seedDynamicConfigCommand(members: readonly EtcdMember[], scope: string): string {
    const key = shellWord(dynamicConfigKey(scope));
    const etcdctl = [...localEtcdctl(), "--command-timeout=5s"].join(" ");
    const inMember = (command: string) => `docker exec -i "$member" sh -c ${shellWord(command)}`;
    return [
        "set -eu",
        'config="$(cat)"',
        "seed() {",
        `  for member in ${members.map((m) => shellWord(m.container)).join(" ")}; do`,
        `    existing="$(${inMember(`${etcdctl} get ${key} --print-value-only`)} </dev/null)" || continue`,
        '    if [ -n "$existing" ]; then return 0; fi',
        `    printf '%s' "$config" | ${inMember(`${etcdctl} put ${key}`)} >/dev/null && return 0`,
        "  done",
        "  return 1",
        "}",
        "attempt=1",
        "until seed; do",
        `  if [ "$attempt" -ge ${SEED_ATTEMPTS} ]; then echo ${shellWord(`no etcd member took the dynamic configuration after ${SEED_ATTEMPTS} attempts`)} >&2; exit 1; fi`,
        "  attempt=$((attempt + 1))",
        "  sleep 2",
        "done",
        "",
    ].join("\n");
}
