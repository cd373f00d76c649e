// What the real providers do, as far as the harness models it: which input
// changes they apply in place and which replace, what they read back into
// state, how they stop what they delete, and their default timeouts. Each rule
// names the provider source it was read from (terraform-provider-docker
// v4.5.0 as bundled by @pulumi/docker 5.x, pulumi-docker's native Image,
// pulumi-command v1.2.1); test/unit/provider-model.test.ts pins each one.
// The unit-test mocks, the Docker mocks and the preview all read this module.

export const CONTAINER = "docker:index/container:Container";
export const IMAGE = "docker:index/image:Image";
export const COMMAND = "command:local:Command";

export interface ProviderRule {
    /** Where in the provider's source the rule is read from. */
    readonly source: string;
}

const TF_DOCKER_SCHEMA = "terraform-provider-docker internal/provider/resource_docker_container.go (schema: no ForceNew)";
const TF_DOCKER_UPDATE = "terraform-provider-docker internal/provider/resource_docker_container_funcs.go resourceDockerContainerUpdate";

/**
 * Container inputs without ForceNew in the schema: a change is an update of
 * the existing container. `live` ones reach the running container (`docker
 * update`, or a start when mustRun turns true); the rest change only the
 * provider's state, and the container keeps what it was created with.
 */
export const CONTAINER_IN_PLACE: Readonly<Record<string, { readonly live: boolean } & ProviderRule>> = {
    restart: { live: true, source: TF_DOCKER_UPDATE },
    maxRetryCount: { live: true, source: TF_DOCKER_UPDATE },
    cpuShares: { live: true, source: TF_DOCKER_UPDATE },
    cpuSet: { live: true, source: TF_DOCKER_UPDATE },
    memory: { live: true, source: TF_DOCKER_UPDATE },
    memoryReservation: { live: true, source: TF_DOCKER_UPDATE },
    memorySwap: { live: true, source: TF_DOCKER_UPDATE },
    mustRun: { live: true, source: TF_DOCKER_UPDATE },
    healthcheck: { live: false, source: TF_DOCKER_SCHEMA },
    wait: { live: false, source: TF_DOCKER_SCHEMA },
    waitTimeout: { live: false, source: TF_DOCKER_SCHEMA },
    destroyGraceSeconds: { live: false, source: TF_DOCKER_SCHEMA },
    start: { live: false, source: TF_DOCKER_SCHEMA },
    init: { live: false, source: TF_DOCKER_SCHEMA },
    tmpfs: { live: false, source: TF_DOCKER_SCHEMA },
    removeVolumes: { live: false, source: TF_DOCKER_SCHEMA },
};

/** Container inputs the program sets that the schema marks ForceNew: a change replaces the container. */
export const CONTAINER_FORCE_NEW: ReadonlySet<string> = new Set([
    "name",
    "hostname",
    "image",
    "user",
    "entrypoints",
    "command",
    "envs",
    "uploads",
    "networksAdvanced",
    "volumes",
    "ports",
    "hosts",
    "dnsOpts",
    "stopSignal",
    "stopTimeout",
    "ulimits",
    "labels",
    "cpus",
    "shmSize",
]);

/**
 * pulumi-command's local Command: a changed input reruns `update`, or
 * `create` when there is no `update`, and the old `delete` is never run; only
 * `triggers` (replaceOnChanges) replaces it.
 */
export const COMMAND_RULES = {
    update: { source: "pulumi-command provider/pkg/provider/local/commandController.go Command.Update" },
    replace: { inputs: new Set(["triggers"]), source: "pulumi-command provider/pkg/provider/common/inputs.go Triggers replaceOnChanges" },
    stdout: { source: 'pulumi-command provider/pkg/provider/local/commandOutputs.go strings.TrimSuffix(stdout, "\\n")' },
} as const;

/** pulumi-docker's native Image: Diff reports every change as an update (a rebuild), never a replacement. */
export const IMAGE_RULES = {
    update: { source: "pulumi-docker provider/provider.go dockerNativeProvider.Diff (PropertyDiff_UPDATE only)" },
    repoDigest: { source: "pulumi-docker provider/image.go: without a push, repoDigest is the image ID from docker inspect" },
    platform: { source: "pulumi-docker provider/provider.go Check: an unset platform becomes linux/<GOARCH of the Pulumi host>" },
} as const;

/**
 * The provider's delete stops a container with `destroy_grace_seconds` as the
 * timeout, 0 when unset (stop signal, then SIGKILL at once); `stop_timeout`
 * plays no part. Then it removes it.
 */
export const CONTAINER_DELETE = {
    graceSeconds: (inputs: Record<string, any>): number => Math.max(inputs.destroyGraceSeconds ?? 0, 0),
    source: "terraform-provider-docker internal/provider/resource_docker_container_funcs.go resourceDockerContainerDelete",
} as const;

/**
 * The provider's network delete: a retry.StateChangeConf (terraform-plugin-sdk
 * helper/retry/state.go) that waits `delaySeconds`, then removes the network
 * (a network already gone counts as removed) and, while Docker says it "has
 * active endpoints", tries again: the wait starts at 100 ms, doubles, and is
 * kept between `minWaitSeconds` and 10 s. The whole delete fails after
 * `timeoutSeconds`, however far it got. That makes attempts at 2, 7, 17 and 27 s.
 */
export const NETWORK_DELETE = {
    retriedError: "has active endpoints",
    delaySeconds: 2,
    minWaitSeconds: 5,
    maxWaitSeconds: 10,
    timeoutSeconds: 30,
    source: "terraform-provider-docker internal/provider/resource_docker_network_funcs.go resourceDockerNetworkDelete",
} as const;

/** Docker's answer when the network does not exist. */
const NO_SUCH_NETWORK = 404;

/** Runs `remove` as the provider's network delete does (NETWORK_DELETE); the clock is a parameter so a test can drive it. */
export async function removeNetworkAsTheProvider(
    remove: () => Promise<void>,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: () => number = Date.now,
): Promise<void> {
    const deadline = now() + NETWORK_DELETE.timeoutSeconds * 1000;
    await sleep(NETWORK_DELETE.delaySeconds * 1000);
    let waitMs = 100;
    for (;;) {
        try {
            await remove();
            return;
        } catch (error) {
            if ((error as { statusCode?: number }).statusCode === NO_SUCH_NETWORK) {
                return;
            }
            if (!String((error as Error).message).includes(NETWORK_DELETE.retriedError)) {
                throw error;
            }
        }
        waitMs = Math.min(Math.max(2 * waitMs, NETWORK_DELETE.minWaitSeconds * 1000), NETWORK_DELETE.maxWaitSeconds * 1000);
        if (now() + waitMs >= deadline) {
            await sleep(deadline - now());
            throw new Error(
                `timeout while waiting for the network to be removed (${NETWORK_DELETE.timeoutSeconds} s, ${NETWORK_DELETE.source})`,
            );
        }
        await sleep(waitMs);
    }
}

/** Create, update and delete are cut off at 20 minutes unless the resource's customTimeouts say otherwise. */
export const DEFAULT_TIMEOUT_SECONDS = 20 * 60;
export const TIMEOUTS_SOURCE = "terraform-provider-docker internal/provider/resource_docker_container.go dockerContainer*DefaultTimeout";

/** The container's health check as the provider's Read puts it in state: durations in Go's `Duration.String()` form. */
export const HEALTHCHECK_READ_BACK = {
    source: "terraform-provider-docker internal/provider/resource_docker_container_funcs.go resourceDockerContainerRead (Healthcheck.Interval.String())",
} as const;

/** `cpus` as the provider's Read puts it in state: from the engine's NanoCpus, in its own decimal form. */
export const CPUS_READ_BACK = {
    source: "terraform-provider-docker internal/provider/helpers.go nanoInt64ToDecimalString, called by resourceDockerContainerRead",
} as const;

/** Docker's opts.ParseCPUs: a decimal count of CPUs in billionths. */
export function parseCpus(cpus: string): number {
    return Math.round(Number(cpus) * 1e9);
}

/**
 * nanoInt64ToDecimalString: nine decimals, then one decimal if the text has
 * exactly nine zeros, else the trailing zeros trimmed. So 2 CPUs read back
 * as "2.0", 1.5 as "1.5", but 10 as "10." (its tenth zero skips the first branch).
 */
export function nanoCpusString(nanos: number): string {
    if (nanos === 0) {
        return "0";
    }
    const nine = `${Math.floor(nanos / 1e9)}.${String(nanos % 1e9).padStart(9, "0")}`;
    if ((nine.match(/0/g) ?? []).length === 9) {
        const tenths = Math.round(nanos / 1e8);
        return `${Math.floor(tenths / 10)}.${tenths % 10}`;
    }
    return nine.replace(/0+$/, "");
}

/** The kind of step the provider plans for a resource whose `changed` inputs differ from its state. */
export function changeStep(type: string, changed: readonly string[]): "update" | "replace" {
    switch (type) {
        case CONTAINER:
            for (const key of changed) {
                if (!(key in CONTAINER_IN_PLACE) && !CONTAINER_FORCE_NEW.has(key)) {
                    throw new Error(`container input ${key} is not modelled: read the provider's schema and add it to provider-model.ts`);
                }
            }
            return changed.every((key) => key in CONTAINER_IN_PLACE) ? "update" : "replace";
        case COMMAND:
            return changed.some((key) => COMMAND_RULES.replace.inputs.has(key)) ? "replace" : "update";
        case IMAGE:
            return "update";
        default:
            // Volumes, networks, random values, TLS keys and certificates: every input is ForceNew.
            return "replace";
    }
}

const NANOS: Record<string, number> = { h: 3600e9, m: 60e9, s: 1e9, ms: 1e6, us: 1e3, µs: 1e3, ns: 1 };

/** Go's `time.ParseDuration` for the units Docker durations use ("30s", "1m30s", "500ms"), in nanoseconds. */
export function parseDuration(duration: string): number {
    let total = 0;
    const rest = duration.replace(/(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)/g, (_, value: string, unit: string) => {
        total += Number(value) * NANOS[unit];
        return "";
    });
    if (rest !== "" || duration === "") {
        throw new Error(`unsupported duration ${JSON.stringify(duration)}`);
    }
    return Math.round(total);
}

/** Go's `time.Duration.String()` for a duration of at least one second or zero: "0s", "2s", "5m0s", "1h30m0s", "1.5s". */
export function goDurationString(nanos: number): string {
    if (nanos === 0) {
        return "0s";
    }
    if (nanos < 1e9) {
        throw new Error(`sub-second durations are not modelled: ${nanos} ns`);
    }
    const hours = Math.floor(nanos / 3600e9);
    const minutes = Math.floor((nanos % 3600e9) / 60e9);
    const seconds = (nanos % 60e9) / 1e9;
    const secondsText = `${Number(seconds.toFixed(9))}s`;
    if (hours > 0) {
        return `${hours}h${minutes}m${secondsText}`;
    }
    return minutes > 0 ? `${minutes}m${secondsText}` : secondsText;
}

/** Schema defaults of the health check's fields, which the bridge's Check fills in before any diff. */
const HEALTHCHECK_DEFAULTS = { interval: "0s", timeout: "0s", startPeriod: "0s", startInterval: "0s", retries: 0 };

/** The inputs as the provider's Check hands them on: schema defaults filled in where the program left a field out. */
export function checkedInputs(type: string, inputs: Record<string, any>): Record<string, any> {
    if (type === CONTAINER && inputs.healthcheck) {
        return { ...inputs, healthcheck: { ...HEALTHCHECK_DEFAULTS, ...inputs.healthcheck } };
    }
    return inputs;
}

/** A health check in the provider's state after a create, from the durations the engine holds. */
export function healthcheckReadBack(healthcheck: Record<string, any>): Record<string, any> {
    const durations = Object.fromEntries(
        (["interval", "timeout", "startPeriod", "startInterval"] as const).map((key) => [
            key,
            goDurationString(parseDuration(healthcheck[key])),
        ]),
    );
    return { ...healthcheck, ...durations };
}

/** The checked inputs as the provider's Read after a create reports them: what the next preview compares against. */
export function readBack(type: string, checked: Record<string, any>): Record<string, any> {
    if (type !== CONTAINER) {
        return checked;
    }
    return {
        ...checked,
        ...(checked.healthcheck ? { healthcheck: healthcheckReadBack(checked.healthcheck) } : {}),
        ...(checked.cpus ? { cpus: nanoCpusString(parseCpus(checked.cpus)) } : {}),
    };
}

/** A value's JSON with object keys sorted: properties compare by value, not by the order they were written in. */
function canonicalJson(value: unknown): string {
    return JSON.stringify(value, (_, v) =>
        typeof v === "object" && v !== null && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
            : v,
    );
}

/** Input keys whose values differ between the provider's state and the new (checked) inputs. */
export function changedInputs(state: Record<string, any>, inputs: Record<string, any>): string[] {
    const keys = new Set([...Object.keys(state), ...Object.keys(inputs)]);
    return [...keys].filter((key) => canonicalJson(state[key]) !== canonicalJson(inputs[key])).sort();
}

/** A command's stdout or stderr as the provider stores it: one trailing newline trimmed. */
export function commandOutput(raw: string): string {
    return raw.endsWith("\n") ? raw.slice(0, -1) : raw;
}

/** The resource options the engine hands the provider, as the harness records them. */
export interface RecordedOptions {
    readonly deleteBeforeReplace: boolean;
    readonly retainOnDelete: boolean;
    /** Seconds; undefined where the resource sets none (the provider's default applies). */
    readonly timeouts: { readonly create?: number; readonly update?: number; readonly delete?: number };
    /**
     * The names of the resources this one depends on, as the engine records
     * them: `dependsOn`, the resources its inputs came from (a component
     * standing for its children), and its parent. The engine deletes a
     * resource only after everything that depends on it.
     */
    readonly dependencies: readonly string[];
}

export const NO_OPTIONS: RecordedOptions = { deleteBeforeReplace: false, retainOnDelete: false, timeouts: {}, dependencies: [] };

/**
 * The order in which the engine deletes resources the program no longer
 * declares, and the old resources it replaced create-before-delete
 * (ScheduleDeletes in Pulumi's step_generator.go): in waves, each of
 * the resources that nothing left to delete depends on, all of a wave at
 * once. `dependencies` maps each resource to delete to what it depends on.
 */
export function deletionWaves(dependencies: ReadonlyMap<string, readonly string[]>): string[][] {
    const waves: string[][] = [];
    const condemned = new Map(dependencies);
    while (condemned.size > 0) {
        const neededByOthers = new Set([...condemned.values()].flat());
        const wave = [...condemned.keys()].filter((name) => !neededByOthers.has(name));
        if (wave.length === 0) {
            throw new Error(`a dependency cycle among the resources to delete: ${[...condemned.keys()].join(", ")}`);
        }
        for (const name of wave) {
            condemned.delete(name);
        }
        waves.push(wave);
    }
    return waves;
}

/** A timeout in seconds: the resource's own, or the provider's default. */
export function timeoutSeconds(options: RecordedOptions, operation: "create" | "update" | "delete"): number {
    return options.timeouts[operation] ?? DEFAULT_TIMEOUT_SECONDS;
}
