// Pulumi mocks that do for real what the providers would: each Docker
// resource the program declares is created on the local Docker engine through
// testcontainers, each command runs in a shell, each random value is random.
// The SDK registers a resource only once everything it depends on has been
// registered, so the cluster comes up in the order the program declares.
import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes, randomInt } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import type * as pulumi from "@pulumi/pulumi";
import type Dockerode from "dockerode";
import tar from "tar-stream";
import { GenericContainer, getContainerRuntimeClient, Wait } from "testcontainers";
import { revealInputs } from "./mocks";
import type { PlannedStep } from "./preview";
import {
    COMMAND,
    CONTAINER,
    CONTAINER_DELETE,
    CONTAINER_IN_PLACE,
    changedInputs,
    changeStep,
    checkedInputs,
    commandOutput,
    deletionWaves,
    goDurationString,
    IMAGE,
    NO_OPTIONS,
    nanoCpusString,
    parseCpus,
    parseDuration,
    type RecordedOptions,
    readBack,
    removeNetworkAsTheProvider,
    timeoutSeconds,
} from "./provider-model";
import type { OptionsRecorder } from "./resource-options";
import { containerLog } from "./sql";
import { PROJECT_ROOT } from "./stack-config";

const run = promisify(execFile);

const MIB = 1024 * 1024;

/** memorySwap as the provider hands it to Docker: MB to bytes, but -1 (unlimited swap) as it is. */
function swapBytes(memorySwap: number): number {
    return memorySwap > 0 ? memorySwap * MIB : memorySwap;
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A host port that is free right now. Published ports are bound to fixed
 * host ports, as in a real deployment, so they survive a container restart.
 */
function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as { port: number };
            server.close(() => resolve(port));
        });
    });
}

/** A GenericContainer that also takes the Engine API options testcontainers has no builder for. */
class DeclaredContainer extends GenericContainer {
    withEngineOptions(options: {
        network: { name: string; aliases?: string[] };
        dnsOptions?: string[];
        restart?: string;
        stopSignal?: string;
        stopTimeout?: number;
        healthcheck?: any;
        limits: { memory?: number; memorySwap?: number; cpus?: string; shmSize?: number };
    }): this {
        // Joined at creation, aliases included (testcontainers' own aliases would
        // attach the container to the default bridge first and join the network after).
        this.withNetworkMode(options.network.name);
        this.createOpts.NetworkingConfig = {
            EndpointsConfig: { [options.network.name]: { Aliases: options.network.aliases ?? [] } },
        };
        // The provider's dns_opts, which it hands Docker as HostConfig.DNSOptions.
        if (options.dnsOptions?.length) {
            this.hostConfig.DnsOptions = options.dnsOptions;
        }
        if (options.restart) {
            this.hostConfig.RestartPolicy = { Name: options.restart };
        }
        if (options.stopSignal) {
            this.createOpts.StopSignal = options.stopSignal;
        }
        if (options.stopTimeout !== undefined) {
            this.createOpts.StopTimeout = options.stopTimeout;
        }
        // As the provider's create maps them: MB to bytes, CPUs to billionths.
        const { memory, memorySwap, cpus, shmSize } = options.limits;
        if (memory) {
            this.hostConfig.Memory = memory * MIB;
        }
        if (memorySwap) {
            this.hostConfig.MemorySwap = swapBytes(memorySwap);
        }
        if (cpus) {
            this.hostConfig.NanoCpus = parseCpus(cpus);
        }
        if (shmSize) {
            this.hostConfig.ShmSize = shmSize * MIB;
        }
        const hc = options.healthcheck;
        if (hc) {
            this.createOpts.Healthcheck = {
                Test: hc.tests,
                Interval: parseDuration(hc.interval),
                Timeout: parseDuration(hc.timeout),
                StartPeriod: parseDuration(hc.startPeriod),
                StartInterval: parseDuration(hc.startInterval),
                Retries: hc.retries,
            } as Dockerode.ContainerCreateOptions["Healthcheck"];
        }
        return this;
    }
}

function ecdsaKey(): Record<string, string> {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    return {
        privateKeyPem: privateKey.export({ type: "sec1", format: "pem" }).toString(),
        publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    };
}

function subjectArg(subject: { commonName?: string; organization?: string } = {}): string {
    const parts = [subject.organization && `O=${subject.organization}`, subject.commonName && `CN=${subject.commonName}`];
    return `/${parts.filter(Boolean).join("/")}`;
}

/** openssl's extendedKeyUsage names for the tls provider's `allowedUses`. */
function extendedKeyUsage(allowedUses: readonly string[]): string {
    const names: Record<string, string> = { server_auth: "serverAuth", client_auth: "clientAuth" };
    return allowedUses
        .filter((use) => use in names)
        .map((use) => names[use])
        .join(",");
}

/** What the tls provider does for certificates, done by the openssl command line. */
async function openssl(type: string, inputs: Record<string, any>): Promise<Record<string, string>> {
    const dir = await mkdtemp(path.join(tmpdir(), "obcms-tls-"));
    const file = (name: string) => path.join(dir, name);
    const days = () => String(Math.ceil(inputs.validityPeriodHours / 24));
    try {
        switch (type) {
            case "tls:index/selfSignedCert:SelfSignedCert":
                await writeFile(file("key.pem"), inputs.privateKeyPem);
                await run("openssl", [
                    "req",
                    "-x509",
                    "-new",
                    "-key",
                    file("key.pem"),
                    "-subj",
                    subjectArg(inputs.subject),
                    "-days",
                    days(),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-out",
                    file("cert.pem"),
                ]);
                return { certPem: await readFile(file("cert.pem"), "utf8") };
            case "tls:index/certRequest:CertRequest": {
                await writeFile(file("key.pem"), inputs.privateKeyPem);
                const names = [
                    ...(inputs.dnsNames ?? []).map((n: string) => `DNS:${n}`),
                    ...(inputs.ipAddresses ?? []).map((ip: string) => `IP:${ip}`),
                ];
                await run("openssl", [
                    "req",
                    "-new",
                    "-key",
                    file("key.pem"),
                    "-subj",
                    subjectArg(inputs.subject),
                    "-addext",
                    `subjectAltName=${names.join(",")}`,
                    "-out",
                    file("csr.pem"),
                ]);
                return { certRequestPem: await readFile(file("csr.pem"), "utf8") };
            }
            case "tls:index/locallySignedCert:LocallySignedCert":
                await writeFile(file("csr.pem"), inputs.certRequestPem);
                await writeFile(file("ca.pem"), inputs.caCertPem);
                await writeFile(file("ca-key.pem"), inputs.caPrivateKeyPem);
                await writeFile(
                    file("ext.cnf"),
                    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
                        `extendedKeyUsage=${extendedKeyUsage(inputs.allowedUses)}\n`,
                );
                await run("openssl", [
                    "x509",
                    "-req",
                    "-in",
                    file("csr.pem"),
                    "-CA",
                    file("ca.pem"),
                    "-CAkey",
                    file("ca-key.pem"),
                    "-set_serial",
                    `0x${randomBytes(16).toString("hex")}`,
                    "-days",
                    days(),
                    "-copy_extensions",
                    "copyall",
                    "-extfile",
                    file("ext.cnf"),
                    "-out",
                    file("cert.pem"),
                ]);
                return { certPem: await readFile(file("cert.pem"), "utf8") };
            default:
                throw new Error(`openssl cannot stand in for ${type}`);
        }
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
}

/**
 * The container's uploads as one tar archive, with each file's owner and mode
 * as the provider sets them (testcontainers' own copy has no owner).
 */
export function uploadsArchive(uploads: ReadonlyArray<Record<string, any>>): tar.Pack {
    const pack = tar.pack();
    for (const u of uploads) {
        pack.entry(
            {
                name: u.file.replace(/^\//, ""),
                mode: parseInt(u.permissions ?? (u.executable ? "0755" : "0644"), 8),
                uid: u.owner === undefined ? 0 : Number(u.owner),
                gid: u.group === undefined ? 0 : Number(u.group),
            },
            u.content,
        );
    }
    pack.finalize();
    return pack;
}

/** Every file under `dir`, relative to it, sorted. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
    const entries = await readdir(path.join(dir, prefix), { withFileTypes: true });
    const nested = await Promise.all(
        entries.map((e) => (e.isDirectory() ? filesUnder(dir, path.join(prefix, e.name)) : Promise.resolve([path.join(prefix, e.name)]))),
    );
    return nested.flat().sort();
}

/**
 * The digest the image provider's Check adds to the build inputs, so that a
 * change to any file in the context is a change of the resource (a rebuild).
 */
async function contextDigest(context: string): Promise<string> {
    const hash = createHash("sha256");
    for (const file of await filesUnder(context)) {
        hash.update(file)
            .update("\0")
            .update(await readFile(path.join(context, file)))
            .update("\0");
    }
    return hash.digest("hex");
}

/** Go's name for the architecture Node runs on, as the provider's `runtime.GOARCH`. */
function goArch(): string {
    const names: Record<string, string> = { x64: "amd64", arm64: "arm64", ia32: "386" };
    return names[process.arch] ?? process.arch;
}

/** A health check as the provider's Read puts it in state, from what the engine holds. */
function inspectedHealthcheck(config: Dockerode.ContainerInspectInfo["Config"]): Record<string, any> | undefined {
    const hc = config.Healthcheck as (Record<string, any> & { Test?: string[] }) | undefined;
    if (!hc) {
        return undefined;
    }
    return {
        tests: hc.Test,
        interval: goDurationString(hc.Interval ?? 0),
        timeout: goDurationString(hc.Timeout ?? 0),
        startPeriod: goDurationString(hc.StartPeriod ?? 0),
        startInterval: goDurationString(hc.StartInterval ?? 0),
        retries: hc.Retries ?? 0,
    };
}

/** Rejects with `message` if `work` takes longer than `seconds`, as the provider's context deadline would. */
async function within<T>(seconds: number, message: string, work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${message}: timed out after ${seconds} s`)), seconds * 1000);
    });
    try {
        return await Promise.race([work, deadline]);
    } finally {
        clearTimeout(timer);
    }
}

/** A command runs at most this long in the harness; pulumi-command itself has no limit but customTimeouts. */
const COMMAND_HARNESS_LIMIT_SECONDS = 300;

interface DeclaredResource {
    readonly type: string;
    /** False for components, which no provider creates, diffs or deletes. */
    readonly custom: boolean;
    /** The inputs as the provider's Check handed them on. */
    readonly inputs: Record<string, any>;
    /** The outputs the provider returned. */
    readonly state: Record<string, any>;
    /** The inputs as they stand in the provider's state, which the next run's inputs are compared with. */
    readonly observed: Record<string, any>;
    readonly options: RecordedOptions;
}

/** Removes a network as the provider does: retried while a removed container's endpoint is still being released. */
function removeNetwork(docker: Dockerode, name: string): Promise<void> {
    return removeNetworkAsTheProvider(() => docker.getNetwork(name).remove());
}

/** Stopping a container that is not running is not an error. */
function ignoreNotRunning(error: { statusCode?: number }): void {
    if (error.statusCode !== 304) {
        throw error;
    }
}

/** How a deleted container went: what the harness saw between the provider's stop and its removal. */
export interface StoppedContainer {
    /** The stop timeout the provider gave it: `destroyGraceSeconds`, 0 when unset. */
    readonly graceSeconds: number;
    /** 0 after a clean exit; 137 when the grace ran out and Docker sent SIGKILL. */
    readonly exitCode: number;
    readonly stopSeconds: number;
    /** Its whole log, stdout and stderr, up to the stop. */
    readonly log: string;
}

interface CreatedObjects {
    readonly containers: string[];
    readonly volumes: string[];
    readonly networks: string[];
}

export interface DockerMocksOptions {
    /** The program's project directory, where Pulumi runs it and its providers: relative paths resolve there. */
    readonly projectDir?: string;
}

export class DockerMocks implements pulumi.runtime.Mocks, OptionsRecorder {
    private readonly created: CreatedObjects = { containers: [], volumes: [], networks: [] };
    /** Every live resource, by Pulumi name, in creation order. */
    private declared = new Map<string, DeclaredResource>();
    /** During an update: the resources of the previous run not declared again yet. */
    private previous = new Map<string, DeclaredResource>();
    /**
     * During an update: the old resources replaced create-before-delete. The
     * engine deletes them at the end of the update with the undeclared ones,
     * not when their replacements exist (pulumi/pulumi#9979 describes it), so
     * an old volume outlives the old container that mounts it.
     */
    private replaced = new Map<string, DeclaredResource>();
    /** The options of each resource as last registered. */
    private readonly options = new Map<string, RecordedOptions>();
    /** During an update: the resources replaced whatever their inputs (`--replace`). */
    private forcedReplacements = new Set<string>();
    /** What the provider did in the current run, by resource. */
    private steps: PlannedStep[] = [];
    private readonly projectDir: string;
    /** The host port each container's published port got, by `<container name>:<port>`. */
    private readonly hostPorts = new Map<string, number>();
    /** How each container this run deleted stopped, by container name; the latest stop wins. */
    private readonly stops = new Map<string, StoppedContainer>();
    /** Rejects with the first resource that could not be created. */
    readonly failure: Promise<never>;
    private fail!: (error: Error) => void;

    constructor(options: DockerMocksOptions = {}) {
        this.projectDir = options.projectDir ?? PROJECT_ROOT;
        this.failure = new Promise<never>((_, reject) => {
            this.fail = reject;
        });
        // Observed by startStack; keep Node from reporting it as unhandled meanwhile.
        this.failure.catch(() => undefined);
    }

    recordOptions(name: string, options: RecordedOptions): void {
        this.options.set(name, options);
    }

    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, any> }> {
        try {
            const inputs = await this.checked(args.type, revealInputs(args.inputs));
            const options = this.options.get(args.name) ?? NO_OPTIONS;
            const before = this.previous.get(args.name);
            this.previous.delete(args.name);
            // Components have no provider: nothing to create, diff or delete.
            const resource =
                args.custom === false
                    ? { type: args.type, custom: false, inputs, state: {}, observed: inputs, options }
                    : await this.apply(args.type, args.name, before, inputs, options);
            this.declared.set(args.name, resource);
            return { id: resource.state.id ?? `${args.name}-id`, state: { ...args.inputs, ...resource.state } };
        } catch (error) {
            const wrapped = new Error(`creating ${args.type} ${args.name}: ${(error as Error).message}`);
            this.fail(wrapped);
            throw wrapped;
        }
    }

    /** Creates, keeps, updates or replaces one resource, as the provider's Diff decides. */
    private async apply(
        type: string,
        name: string,
        before: DeclaredResource | undefined,
        inputs: Record<string, any>,
        options: RecordedOptions,
    ): Promise<DeclaredResource> {
        if (before === undefined) {
            this.steps.push({ name, step: "create" });
            return this.create(type, name, inputs, options);
        }
        const changed = changedInputs(before.observed, inputs);
        const forced = this.forcedReplacements.has(name);
        if (changed.length === 0 && !forced) {
            return { ...before, options };
        }
        if (!forced && changeStep(type, changed) === "update") {
            this.steps.push({ name, step: "update" });
            return this.update(name, before, inputs, changed, options);
        }
        this.steps.push({ name, step: "replace" });
        if (options.deleteBeforeReplace) {
            await this.deleteResource(before);
            return this.create(type, name, inputs, options);
        }
        const replacement = await this.create(type, name, inputs, options);
        this.replaced.set(name, before);
        return replacement;
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        throw new Error(`unexpected provider call ${args.token}`);
    }

    /** The inputs as the provider's Check hands them on: schema defaults, and for an image its platform and context digest. */
    private async checked(type: string, inputs: Record<string, any>): Promise<Record<string, any>> {
        if (type === IMAGE && inputs.build) {
            const build = { platform: `linux/${goArch()}`, ...inputs.build };
            return { ...inputs, build: { ...build, contextDigest: await contextDigest(path.resolve(this.projectDir, build.context)) } };
        }
        return checkedInputs(type, inputs);
    }

    private async create(type: string, name: string, inputs: Record<string, any>, options: RecordedOptions): Promise<DeclaredResource> {
        const state = await this.createObject(type, name, inputs, options);
        const observed = type === CONTAINER ? await this.containerReadBack(inputs) : readBack(type, inputs);
        return { type, custom: true, inputs, state, observed, options };
    }

    private async createObject(
        type: string,
        name: string,
        inputs: Record<string, any>,
        options: RecordedOptions,
    ): Promise<Record<string, any>> {
        switch (type) {
            case "random:index/randomPassword:RandomPassword":
                return { result: Array.from({ length: inputs.length }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join("") };
            case "random:index/randomBytes:RandomBytes": {
                const bytes = randomBytes(inputs.length);
                return { base64: bytes.toString("base64"), hex: bytes.toString("hex") };
            }
            case "tls:index/privateKey:PrivateKey":
                return ecdsaKey();
            case "tls:index/selfSignedCert:SelfSignedCert":
            case "tls:index/certRequest:CertRequest":
            case "tls:index/locallySignedCert:LocallySignedCert":
                return openssl(type, inputs);
            case IMAGE:
                return this.buildImage(inputs);
            case "docker:index/network:Network":
                return this.createNetwork(inputs);
            case "docker:index/volume:Volume":
                return this.createVolume(inputs);
            case CONTAINER:
                return this.startContainer(inputs, options);
            case COMMAND:
                return this.runCommand(name, inputs.create, inputs, options, "create");
            default:
                throw new Error(`no real counterpart for resource type ${type}`);
        }
    }

    /**
     * An in-place update: a container gets only what `docker update` applies
     * (the rest changes the provider's state alone), a command reruns, an
     * image is rebuilt. The provider reads nothing back afterwards.
     */
    private async update(
        name: string,
        before: DeclaredResource,
        inputs: Record<string, any>,
        changed: readonly string[],
        options: RecordedOptions,
    ): Promise<DeclaredResource> {
        let state: Record<string, any> = before.state;
        switch (before.type) {
            case CONTAINER:
                await this.updateContainer(inputs, before.inputs, changed);
                break;
            case COMMAND:
                state = { ...state, ...(await this.runCommand(name, inputs.update ?? inputs.create, inputs, options, "update")) };
                break;
            case IMAGE:
                state = { ...state, ...(await this.buildImage(inputs)) };
                break;
            default:
                throw new Error(`${before.type} has no in-place update`);
        }
        return { type: before.type, custom: true, inputs, state, observed: inputs, options };
    }

    private async updateContainer(inputs: Record<string, any>, old: Record<string, any>, changed: readonly string[]): Promise<void> {
        const container = (await this.dockerode()).getContainer(inputs.name);
        if (changed.some((key) => CONTAINER_IN_PLACE[key].live && key !== "mustRun")) {
            await container.update({
                RestartPolicy: { Name: inputs.restart ?? "no", MaximumRetryCount: inputs.maxRetryCount ?? 0 },
                CpuShares: inputs.cpuShares ?? 0,
                Memory: (inputs.memory ?? 0) * MIB,
                MemoryReservation: (inputs.memoryReservation ?? 0) * MIB,
                CpusetCpus: inputs.cpuSet ?? "",
                ...(inputs.memorySwap ? { MemorySwap: swapBytes(inputs.memorySwap) } : {}),
            });
        }
        if (changed.includes("mustRun") && old.mustRun === false && inputs.mustRun !== false && inputs.start !== false) {
            await container.start();
        }
    }

    private async dockerode(): Promise<Dockerode> {
        return (await getContainerRuntimeClient()).container.dockerode;
    }

    private async buildImage(inputs: Record<string, any>): Promise<Record<string, any>> {
        const { context, dockerfile, platform } = inputs.build;
        await run("docker", ["build", "--quiet", "--tag", inputs.imageName, "--platform", platform, "--file", dockerfile, context], {
            cwd: this.projectDir,
            maxBuffer: 16 * 1024 * 1024,
        });
        // Without a push the provider hands on the image ID as repoDigest.
        const image = await (await this.dockerode()).getImage(inputs.imageName).inspect();
        return { repoDigest: image.Id };
    }

    private async createNetwork(inputs: Record<string, any>): Promise<Record<string, any>> {
        const network = await (await this.dockerode()).createNetwork({ Name: inputs.name, Driver: inputs.driver ?? "bridge" });
        this.created.networks.push(inputs.name);
        return { id: network.id };
    }

    private async createVolume(inputs: Record<string, any>): Promise<Record<string, any>> {
        await (await this.dockerode()).createVolume({ Name: inputs.name });
        this.created.volumes.push(inputs.name);
        return { id: inputs.name };
    }

    /** The container's inputs as the provider's Read after its create puts them in state. */
    private async containerReadBack(inputs: Record<string, any>): Promise<Record<string, any>> {
        const inspect = await (await this.dockerode()).getContainer(inputs.name).inspect();
        const healthcheck = inspectedHealthcheck(inspect.Config);
        return {
            ...inputs,
            ...(healthcheck ? { healthcheck } : {}),
            ...(inputs.cpus ? { cpus: nanoCpusString(inspect.HostConfig.NanoCpus ?? 0) } : {}),
        };
    }

    private async startContainer(inputs: Record<string, any>, options: RecordedOptions): Promise<Record<string, any>> {
        const ports: Array<{ internal: number; external: number }> = [];
        for (const p of inputs.ports ?? []) {
            // A replacement publishes on the same host port, as the configured port would be.
            const key = `${inputs.name}:${p.internal}`;
            const external = this.hostPorts.get(key) ?? (await freePort());
            this.hostPorts.set(key, external);
            ports.push({ ...p, internal: p.internal, external });
        }
        // The provider waits for health within waitTimeout (60 s by default), and
        // the whole create within its create timeout.
        const startupSeconds = Math.min(inputs.waitTimeout ?? 60, timeoutSeconds(options, "create"));
        const container = new DeclaredContainer(inputs.image)
            .withName(inputs.name)
            .withHostname(inputs.hostname ?? inputs.name)
            .withEntrypoint(inputs.entrypoints)
            .withCopyArchivesToContainer([{ tar: Readable.from(uploadsArchive(inputs.uploads ?? [])), target: "/" }])
            .withBindMounts(
                (inputs.volumes ?? []).map((v: any) => ({
                    source: v.volumeName,
                    target: v.containerPath,
                    mode: v.readOnly ? ("ro" as const) : ("rw" as const),
                })),
            )
            // On free host ports rather than the configured ones, so parallel runs and the host's own services never clash.
            .withExposedPorts(...ports.map((p) => ({ container: p.internal, host: p.external })))
            .withUlimits(Object.fromEntries((inputs.ulimits ?? []).map((u: any) => [u.name, { soft: u.soft, hard: u.hard }])))
            // The provider's `host` blocks, which it passes as ExtraHosts "host:ip".
            .withExtraHosts((inputs.hosts ?? []).map((h: any) => ({ host: h.host, ipAddress: h.ip })))
            // The provider's `labels` blocks, which it passes as Config.Labels.
            .withLabels(Object.fromEntries((inputs.labels ?? []).map((l: any) => [l.label, l.value])))
            .withEngineOptions({
                network: inputs.networksAdvanced[0],
                dnsOptions: inputs.dnsOpts,
                restart: inputs.restart,
                stopSignal: inputs.stopSignal,
                stopTimeout: inputs.stopTimeout,
                healthcheck: inputs.healthcheck,
                limits: { memory: inputs.memory, memorySwap: inputs.memorySwap, cpus: inputs.cpus, shmSize: inputs.shmSize },
            })
            .withWaitStrategy(inputs.wait ? Wait.forHealthCheck() : Wait.forListeningPorts())
            .withStartupTimeout(startupSeconds * 1000);
        if (inputs.command) {
            container.withCommand(inputs.command);
        }
        if (inputs.user) {
            container.withUser(inputs.user);
        }
        if (inputs.envs) {
            // The provider's `NAME=value` strings; a value may itself contain "=".
            container.withEnvironment(
                Object.fromEntries(inputs.envs.map((env: string) => [env.slice(0, env.indexOf("=")), env.slice(env.indexOf("=") + 1)])),
            );
        }
        // testcontainers removes a container that fails to turn healthy, so its
        // log is collected as it runs, to explain the failure.
        const log: string[] = [];
        container.withLogConsumer((stream) => stream.on("data", (chunk: Buffer) => log.push(chunk.toString())));
        this.created.containers.push(inputs.name);
        try {
            const started = await container.start();
            return { id: started.getId(), ports: ports.map((p) => ({ ...p, ip: "127.0.0.1", protocol: "tcp" })) };
        } catch (error) {
            const tail = log.join("").split("\n").slice(-40).join("\n");
            throw new Error(`${(error as Error).message}\n--- last log lines of ${inputs.name} ---\n${tail}`);
        }
    }

    private async runCommand(
        name: string,
        script: string | undefined,
        inputs: Record<string, any>,
        options: RecordedOptions,
        operation: "create" | "update",
    ): Promise<Record<string, any>> {
        if (script === undefined) {
            return {};
        }
        const limit = options.timeouts[operation] ?? COMMAND_HARNESS_LIMIT_SECONDS;
        const child = run("/bin/sh", ["-c", script], {
            env: { ...process.env, ...(inputs.environment ?? {}) },
            timeout: limit * 1000,
        });
        // As the provider does: standard input is the `stdin` input when it is set and not empty.
        child.child.stdin?.end(inputs.stdin || undefined);
        const result = await child.catch((error) => {
            throw new Error(`command ${name} failed: ${error.stderr || error.message}`);
        });
        return { stdout: commandOutput(result.stdout), stderr: commandOutput(result.stderr) };
    }

    /**
     * Starts an update: the next program run is compared with the resources
     * that exist now. `replace` names resources to replace whatever their
     * inputs, as `pulumi up --replace <urn>` does, and as the tls provider does
     * with a certificate within its early-renewal window.
     */
    beginUpdate(replace: readonly string[] = []): void {
        this.forcedReplacements = new Set(replace);
        this.previous = this.declared;
        this.replaced = new Map();
        this.declared = new Map();
        this.steps = [];
    }

    /**
     * Ends an update: whatever the program no longer declares, and the old
     * resources replaced create-before-delete, are deleted as the engine
     * schedules it (deletionWaves over the old dependencies, where names are
     * unique), a wave at a time, all of a wave at once. Returns what the
     * update did to each resource it touched, by name.
     */
    async finishUpdate(): Promise<PlannedStep[]> {
        const undeclared = this.previous;
        const condemned = new Map([...undeclared, ...this.replaced]);
        this.previous = new Map();
        this.replaced = new Map();
        for (const wave of deletionWaves(new Map([...condemned].map(([name, r]) => [name, r.options.dependencies])))) {
            const resources = wave.map((name) => [name, condemned.get(name) as DeclaredResource] as const);
            for (const [name, resource] of resources) {
                if (resource.custom && undeclared.has(name)) {
                    this.steps.push({ name, step: "delete" });
                }
            }
            await Promise.all(resources.map(([, resource]) => this.deleteResource(resource)));
        }
        return [...this.steps].sort((a, b) => a.name.localeCompare(b.name));
    }

    /**
     * What the providers' delete does: a container is stopped with
     * destroyGraceSeconds (0 when unset: the stop signal, then SIGKILL at
     * once) within the delete timeout, then removed; a volume or network is
     * removed; a command's `delete` runs. A resource with retainOnDelete is
     * only forgotten, as Pulumi leaves it to exist.
     */
    private async deleteResource(resource: DeclaredResource): Promise<void> {
        if (!resource.custom || resource.options.retainOnDelete) {
            return;
        }
        const docker = await this.dockerode();
        switch (resource.type) {
            case CONTAINER: {
                const container = docker.getContainer(resource.inputs.name);
                const graceSeconds = CONTAINER_DELETE.graceSeconds(resource.inputs);
                const stopping = Date.now();
                await within(
                    timeoutSeconds(resource.options, "delete"),
                    `deleting container ${resource.inputs.name}`,
                    container.stop({ t: graceSeconds }).catch(ignoreNotRunning),
                );
                const stopSeconds = (Date.now() - stopping) / 1000;
                const { State } = await container.inspect();
                const log = await containerLog(resource.inputs.name);
                this.stops.set(resource.inputs.name, { graceSeconds, exitCode: State.ExitCode, stopSeconds, log });
                await container.remove({ force: true });
                return;
            }
            case "docker:index/volume:Volume":
                await docker.getVolume(resource.inputs.name).remove();
                return;
            case "docker:index/network:Network":
                await removeNetwork(docker, resource.inputs.name);
                return;
            case COMMAND:
                if (resource.inputs.delete) {
                    await run("/bin/sh", ["-c", resource.inputs.delete], { timeout: COMMAND_HARNESS_LIMIT_SECONDS * 1000 });
                }
                return;
            default:
                // Random values, certificates and images live only in state.
                return;
        }
    }

    /** How the named container stopped when this run last deleted it, if it did. */
    stopped(containerName: string): StoppedContainer | undefined {
        return this.stops.get(containerName);
    }

    /**
     * The URL with a container host name (reachable only on the cluster
     * network) replaced by the container's address on that network, which the
     * Docker host reaches too.
     */
    async reachableFromHost(url: string): Promise<string> {
        const parsed = new URL(url);
        if (!this.created.containers.includes(parsed.hostname)) {
            return url;
        }
        const inspect = await (await this.dockerode()).getContainer(parsed.hostname).inspect();
        const [network] = Object.values(inspect.NetworkSettings.Networks);
        if (!network?.IPAddress) {
            // Not on the network right now (restarting, disconnected): nothing better to offer.
            return url;
        }
        parsed.hostname = network.IPAddress;
        return parsed.toString();
    }

    /** Removes every container, volume and network this run created, newest first. */
    async removeAll(): Promise<void> {
        const docker = await this.dockerode();
        // Gone already, or being removed (testcontainers removes a container that failed to start).
        const ignoreMissing = (error: { statusCode?: number }) => {
            if (error.statusCode !== 404 && error.statusCode !== 409) {
                throw error;
            }
        };
        await Promise.all(
            [...this.created.containers].reverse().map((c) => docker.getContainer(c).remove({ force: true }).catch(ignoreMissing)),
        );
        await Promise.all(this.created.volumes.map((v) => docker.getVolume(v).remove().catch(ignoreMissing)));
        await Promise.all(this.created.networks.map((n) => removeNetwork(docker, n).catch(ignoreMissing)));
    }
}
