// Each rule the harness models (harness/provider-model.ts), pinned to
// what the provider's source does: a rule that drifts from the provider must
// be changed here, with the source read again.
import { describe, expect, it } from "vitest";
import {
    dockerDuration,
    inPlaceInputs,
    replacementDigest,
    replacingInputs,
    type ServiceContainerArgs,
} from "../../components/service-container";
import { promiseOf } from "../../harness/outputs";
import {
    COMMAND,
    COMMAND_RULES,
    CONTAINER,
    CONTAINER_DELETE,
    CONTAINER_FORCE_NEW,
    CONTAINER_IN_PLACE,
    CPUS_READ_BACK,
    changeStep,
    commandOutput,
    DEFAULT_TIMEOUT_SECONDS,
    deletionWaves,
    goDurationString,
    HEALTHCHECK_READ_BACK,
    IMAGE,
    IMAGE_RULES,
    NETWORK_DELETE,
    nanoCpusString,
    parseCpus,
    parseDuration,
    readBack,
    removeNetworkAsTheProvider,
    TIMEOUTS_SOURCE,
} from "../../harness/provider-model";

describe("terraform-provider-docker v4.5.0, docker_container", () => {
    it.each(Object.entries(CONTAINER_IN_PLACE))("updates %s in place (%o)", (input, rule) => {
        expect(rule.source).toMatch(/^terraform-provider-docker internal\/provider\/resource_docker_container(_funcs)?\.go /);
        expect(changeStep(CONTAINER, [input])).toBe("update");
    });

    it("applies only restart policy, resource limits and a start to the running container; the rest stays in state", () => {
        const live = Object.entries(CONTAINER_IN_PLACE)
            .filter(([, rule]) => rule.live)
            .map(([input]) => input)
            .sort();
        expect(live).toEqual(["cpuSet", "cpuShares", "maxRetryCount", "memory", "memoryReservation", "memorySwap", "mustRun", "restart"]);
    });

    it.each([...CONTAINER_FORCE_NEW])("replaces the container when %s changes", (input) => {
        expect(changeStep(CONTAINER, [input])).toBe("replace");
        expect(changeStep(CONTAINER, [input, "restart"])).toBe("replace");
    });

    it(`stops a deleted container with destroyGraceSeconds, 0 when unset, never stopTimeout (${CONTAINER_DELETE.source})`, () => {
        expect(CONTAINER_DELETE.graceSeconds({ stopTimeout: 60 })).toBe(0);
        expect(CONTAINER_DELETE.graceSeconds({ stopTimeout: 60, destroyGraceSeconds: 120 })).toBe(120);
    });

    it(`cuts create, update and delete off at 20 minutes by default (${TIMEOUTS_SOURCE})`, () => {
        expect(DEFAULT_TIMEOUT_SECONDS).toBe(1200);
    });

    it(`reads health-check durations back in Go's Duration.String() form (${HEALTHCHECK_READ_BACK.source})`, () => {
        const state = readBack(CONTAINER, {
            healthcheck: {
                tests: ["CMD", "true"],
                interval: "2s",
                timeout: "5000ms",
                startPeriod: "1800s",
                startInterval: "0s",
                retries: 3,
            },
        });
        expect(state.healthcheck).toEqual({
            tests: ["CMD", "true"],
            interval: "2s",
            timeout: "5s",
            startPeriod: "30m0s",
            startInterval: "0s",
            retries: 3,
        });
    });
});

// serviceContainer's split of its inputs, which the members' handover follows: a digest of the
// replacing ones changes exactly when the provider would replace the container.
describe("serviceContainer's inputs, split as the provider treats them", () => {
    const args: ServiceContainerArgs = {
        containerName: "c",
        image: "obcms-database:17",
        network: "n",
        startScript: "exec sleep infinity\n",
        files: [{ path: "/etc/obcms/a.conf", content: "a = 1\n" }],
        volumes: [{ name: "v", mountPath: "/var/lib/obcms" }],
        publish: { internal: 5432, external: 15432, ip: "127.0.0.1" },
        healthcheck: ["true"],
        healthyWithinSeconds: 60,
        stopSignal: "SIGTERM",
        stopGraceSeconds: 30,
        openFilesLimit: 1024,
        resources: { memoryMb: 1024, cpus: 2 },
        init: true,
    };
    const digest = (changed: Partial<ServiceContainerArgs>) => promiseOf(replacementDigest({ ...args, ...changed }));

    it("declares as replacing only inputs the schema marks ForceNew, and the rest only inputs it updates in place", () => {
        expect(Object.keys(replacingInputs(args)).filter((key) => !CONTAINER_FORCE_NEW.has(key))).toEqual([]);
        expect(Object.keys(inPlaceInputs(args)).filter((key) => !(key in CONTAINER_IN_PLACE))).toEqual([]);
        expect(Object.keys(replacingInputs(args)).filter((key) => key in inPlaceInputs(args))).toEqual([]);
    });

    it("keeps the replacement digest when only in-place inputs change: the health check and the wait for it", async () => {
        const before = await digest({});
        expect(await digest({ healthyWithinSeconds: 600, healthcheck: ["false"] })).toBe(before);
        expect(Object.keys(inPlaceInputs({ ...args, healthyWithinSeconds: 600 }))).toContain("healthcheck");
    });

    it("changes the replacement digest with any replacing input: the image, a file, the CPU limit, the stop signal", async () => {
        const before = await digest({});
        const changed = await Promise.all([
            digest({ image: "obcms-database:17.2" }),
            digest({ files: [{ path: "/etc/obcms/a.conf", content: "a = 2\n" }] }),
            digest({ resources: { memoryMb: 1024, cpus: 1 } }),
            digest({ stopSignal: "SIGINT" }),
        ]);
        expect(changed.filter((d) => d === before)).toEqual([]);
        expect(new Set(changed).size).toBe(changed.length);
    });
});

describe("terraform-provider-docker's cpus read back", () => {
    it.each([
        ["2", "2.0"],
        ["1.5", "1.5"],
        ["0.5", "0.5"],
        ["1.25", "1.25"],
        ["10", "10."],
        ["100", "100."],
    ])(`writes %s back as %s (${CPUS_READ_BACK.source})`, (written, read) => {
        expect(nanoCpusString(parseCpus(written))).toBe(read);
        expect(readBack(CONTAINER, { cpus: written }).cpus).toBe(read);
    });
});

describe("Go's time.Duration: ParseDuration and String", () => {
    it.each([
        ["0s", "0s"],
        ["2s", "2s"],
        ["60s", "1m0s"],
        ["300s", "5m0s"],
        ["1.5s", "1.5s"],
        ["3600s", "1h0m0s"],
        ["1h30m", "1h30m0s"],
        ["3720s", "1h2m0s"],
    ])("%s reads back as %s", (written, read) => {
        expect(goDurationString(parseDuration(written))).toBe(read);
    });

    it("rejects what Go would not parse", () => {
        expect(() => parseDuration("5 minutes")).toThrow('unsupported duration "5 minutes"');
        expect(() => parseDuration("")).toThrow('unsupported duration ""');
    });

    it("the program writes every whole number of seconds the way the provider reads it back", () => {
        for (let seconds = 0; seconds <= 4 * 3600; seconds += 7) {
            expect(dockerDuration(seconds)).toBe(goDurationString(seconds * 1e9));
        }
    });
});

describe("pulumi-command v1.2.1, local.Command", () => {
    it(`reruns create for a changed command line, environment or delete (${COMMAND_RULES.update.source})`, () => {
        for (const input of ["create", "delete", "update", "environment", "dir"]) {
            expect(changeStep(COMMAND, [input]), input).toBe("update");
        }
    });

    it(`replaces only for triggers (${COMMAND_RULES.replace.source})`, () => {
        expect(changeStep(COMMAND, ["triggers"])).toBe("replace");
        expect(changeStep(COMMAND, ["create", "triggers"])).toBe("replace");
    });

    it(`trims one trailing newline from stdout and stderr (${COMMAND_RULES.stdout.source})`, () => {
        expect(commandOutput("label\n")).toBe("label");
        expect(commandOutput("label\n\n")).toBe("label\n");
        expect(commandOutput("label")).toBe("label");
    });
});

describe("pulumi-docker native Image", () => {
    it(`rebuilds in place on any change (${IMAGE_RULES.update.source})`, () => {
        expect(changeStep(IMAGE, ["build", "imageName"])).toBe("update");
    });
});

describe("every other type (volumes, networks, random values, TLS keys and certificates)", () => {
    it("replaces on any change: their inputs are all ForceNew", () => {
        for (const type of [
            "docker:index/volume:Volume",
            "docker:index/network:Network",
            "random:index/randomPassword:RandomPassword",
            "tls:index/privateKey:PrivateKey",
        ]) {
            expect(changeStep(type, ["name"]), type).toBe("replace");
        }
    });
});

describe(`terraform-provider-docker v4.5.0, docker_network delete (${NETWORK_DELETE.source})`, () => {
    const ACTIVE_ENDPOINTS = "(HTTP code 403) unexpected - error while removing network: network x-net id 1 has active endpoints";
    /** A clock that only the provider's waits move, and a remove that fails `failures` times with `error`. */
    function network(failures: number, error: Error & { statusCode?: number } = new Error(ACTIVE_ENDPOINTS)) {
        let clockMs = 0;
        const attemptsAtMs: number[] = [];
        const remove = async () => {
            attemptsAtMs.push(clockMs);
            if (attemptsAtMs.length <= failures) {
                throw error;
            }
        };
        const sleep = async (ms: number) => {
            clockMs += ms;
        };
        return { run: () => removeNetworkAsTheProvider(remove, sleep, () => clockMs), attemptsAtMs, elapsedMs: () => clockMs };
    }

    it("waits 2 s, then retries after 5 s and 10 s while Docker reports active endpoints", async () => {
        const n = network(2);
        await n.run();
        expect(n.attemptsAtMs).toEqual([2000, 7000, 17000]);
    });

    it("fails at 30 s, after the attempts at 2, 7, 17 and 27 s", async () => {
        const n = network(Number.POSITIVE_INFINITY);
        await expect(n.run()).rejects.toThrow("timeout while waiting for the network to be removed (30 s");
        expect(n.attemptsAtMs).toEqual([2000, 7000, 17000, 27000]);
        expect(n.elapsedMs()).toBe(30_000);
    });

    it("counts a network that is already gone as removed", async () => {
        const n = network(1, Object.assign(new Error("(HTTP code 404) no such network"), { statusCode: 404 }));
        await n.run();
        expect(n.attemptsAtMs).toEqual([2000]);
    });

    it("fails at once on any other error", async () => {
        const n = network(1, new Error("(HTTP code 500) server error"));
        await expect(n.run()).rejects.toThrow("server error");
        expect(n.attemptsAtMs).toEqual([2000]);
    });
});

describe("Pulumi's engine, ScheduleDeletes (pkg/resource/deploy/step_generator.go)", () => {
    it("deletes what nothing depends on first, everything of a wave at once: two removed members stop together", () => {
        const removed = new Map<string, string[]>([
            ["replica-2", []],
            ["replica-2-data", []],
            ["replica-2-container", ["replica-2-data", "replica-2"]],
            ["replica-3", []],
            ["replica-3-data", []],
            ["replica-3-container", ["replica-3-data", "replica-3"]],
            ["monitoring-replica-3-exporter", ["replica-3-container", "monitoring"]],
        ]);
        expect(deletionWaves(removed)).toEqual([
            ["replica-2-container", "monitoring-replica-3-exporter"],
            ["replica-2", "replica-2-data", "replica-3-container"],
            ["replica-3", "replica-3-data"],
        ]);
    });

    it("ignores dependencies on resources that stay, and refuses a cycle", () => {
        expect(deletionWaves(new Map([["a", ["kept"]]]))).toEqual([["a"]]);
        expect(() =>
            deletionWaves(
                new Map([
                    ["a", ["b"]],
                    ["b", ["a"]],
                ]),
            ),
        ).toThrow("a dependency cycle among the resources to delete: a, b");
    });
});
