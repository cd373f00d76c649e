// Pulumi mocks that do for real what the providers would: each Docker
// resource the program declares is created on the local Docker engine through
// testcontainers, each command runs in a shell, each random value is random.
// The SDK registers a resource only once everything it depends on has been
// registered, so the cluster comes up in the order the program declares.
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { Readable } from "node:stream";
import { generateKeyPairSync, randomBytes, randomInt } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import tar from "tar-stream";
import { GenericContainer, getContainerRuntimeClient, Wait } from "testcontainers";
import type Dockerode from "dockerode";
import { revealInputs } from "./mocks";

const run = promisify(execFile);

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Docker's duration strings as the provider takes them ("30s", "1m30s", "500ms") to nanoseconds. */
function durationNanos(duration: string | undefined): number | undefined {
    if (duration === undefined) {
        return undefined;
    }
    const units: Record<string, number> = { h: 3600e9, m: 60e9, s: 1e9, ms: 1e6 };
    let total = 0;
    const rest = duration.replace(/(\d+(?:\.\d+)?)(ms|h|m|s)/g, (_, value: string, unit: string) => {
        total += Number(value) * units[unit];
        return "";
    });
    if (rest !== "") {
        throw new Error(`unsupported duration ${JSON.stringify(duration)}`);
    }
    return total;
}

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
        restart?: string;
        stopSignal?: string;
        stopTimeout?: number;
        healthcheck?: any;
    }): this {
        // Joined at creation, aliases included (testcontainers' own aliases would
        // attach the container to the default bridge first and join the network after).
        this.withNetworkMode(options.network.name);
        this.createOpts.NetworkingConfig = {
            EndpointsConfig: { [options.network.name]: { Aliases: options.network.aliases ?? [] } },
        };
        if (options.restart) {
            this.hostConfig.RestartPolicy = { Name: options.restart };
        }
        if (options.stopSignal) {
            this.createOpts.StopSignal = options.stopSignal;
        }
        if (options.stopTimeout !== undefined) {
            this.createOpts.StopTimeout = options.stopTimeout;
        }
        const hc = options.healthcheck;
        if (hc) {
            this.createOpts.Healthcheck = {
                Test: hc.tests,
                Interval: durationNanos(hc.interval),
                Timeout: durationNanos(hc.timeout),
                StartPeriod: durationNanos(hc.startPeriod),
                StartInterval: durationNanos(hc.startInterval),
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
    return allowedUses.filter((use) => use in names).map((use) => names[use]).join(",");
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
                    "req", "-x509", "-new", "-key", file("key.pem"), "-subj", subjectArg(inputs.subject), "-days", days(),
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-out", file("cert.pem"),
                ]);
                return { certPem: await readFile(file("cert.pem"), "utf8") };
            case "tls:index/certRequest:CertRequest": {
                await writeFile(file("key.pem"), inputs.privateKeyPem);
                const names = [
                    ...(inputs.dnsNames ?? []).map((n: string) => `DNS:${n}`),
                    ...(inputs.ipAddresses ?? []).map((ip: string) => `IP:${ip}`),
                ];
                await run("openssl", [
                    "req", "-new", "-key", file("key.pem"), "-subj", subjectArg(inputs.subject),
                    "-addext", `subjectAltName=${names.join(",")}`, "-out", file("csr.pem"),
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
                    "x509", "-req", "-in", file("csr.pem"), "-CA", file("ca.pem"), "-CAkey", file("ca-key.pem"),
                    "-set_serial", `0x${randomBytes(16).toString("hex")}`, "-days", days(), "-copy_extensions", "copyall",
                    "-extfile", file("ext.cnf"), "-out", file("cert.pem"),
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
function uploadsArchive(uploads: ReadonlyArray<Record<string, any>>): tar.Pack {
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

interface DeclaredResource {
    readonly type: string;
    readonly inputs: Record<string, any>;
    readonly state: Record<string, any>;
}

/** Stopping a container that is not running is not an error. */
function ignoreNotRunning(error: { statusCode?: number }): void {
    if (error.statusCode !== 304) {
        throw error;
    }
}

interface CreatedObjects {
    readonly containers: string[];
    readonly volumes: string[];
    readonly networks: string[];
}

export class DockerMocks implements pulumi.runtime.Mocks {
    private readonly created: CreatedObjects = { containers: [], volumes: [], networks: [] };
    /** Every live resource, by Pulumi name, in creation order, with its inputs and state. */
    private declared = new Map<string, DeclaredResource>();
    /** During an update: the resources of the previous run not declared again yet. */
    private previous = new Map<string, DeclaredResource>();
    /** Rejects with the first resource that could not be created. */
    readonly failure: Promise<never>;
    private fail!: (error: Error) => void;

    constructor() {
        this.failure = new Promise<never>((_, reject) => {
            this.fail = reject;
        });
        // Observed by startStack; keep Node from reporting it as unhandled meanwhile.
        this.failure.catch(() => undefined);
    }

    async newResource(args: pulumi.runtime.MockResourceArgs): Promise<{ id: string; state: Record<string, any> }> {
        try {
            const inputs = revealInputs(args.inputs);
            const before = this.previous.get(args.name);
            this.previous.delete(args.name);
            let state: Record<string, any>;
            if (before && JSON.stringify(before.inputs) === JSON.stringify(inputs)) {
                // Unchanged: the provider has nothing to do.
                state = before.state;
            } else {
                if (before) {
                    // Changed: replaced, the old one first (deleteBeforeReplace; names are fixed).
                    await this.deleteResource(before);
                }
                state = await this.create(args.type, args.name, inputs);
            }
            this.declared.set(args.name, { type: args.type, inputs, state });
            return { id: state.id ?? `${args.name}-id`, state: { ...args.inputs, ...state } };
        } catch (error) {
            const wrapped = new Error(`creating ${args.type} ${args.name}: ${(error as Error).message}`);
            this.fail(wrapped);
            throw wrapped;
        }
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        throw new Error(`unexpected provider call ${args.token}`);
    }

    private async create(type: string, name: string, inputs: Record<string, any>): Promise<Record<string, any>> {
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
            case "docker:index/image:Image":
                return this.buildImage(inputs);
            case "docker:index/network:Network":
                return this.createNetwork(inputs);
            case "docker:index/volume:Volume":
                return this.createVolume(inputs);
            case "docker:index/container:Container":
                return this.startContainer(inputs);
            case "command:local:Command":
                return this.runCommand(name, inputs);
            default:
                if (type.startsWith("obcms:")) {
                    return {};
                }
                throw new Error(`no real counterpart for resource type ${type}`);
        }
    }

    private async dockerode(): Promise<Dockerode> {
        return (await getContainerRuntimeClient()).container.dockerode;
    }

    private async buildImage(inputs: Record<string, any>): Promise<Record<string, any>> {
        const { context, dockerfile } = inputs.build;
        await run("docker", ["build", "--quiet", "--tag", inputs.imageName, "--file", dockerfile, context], {
            maxBuffer: 16 * 1024 * 1024,
        });
        // Containers take the image by digest, as the provider hands it on; a
        // local build has no registry digest, so its image ID stands in.
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

    private async startContainer(inputs: Record<string, any>): Promise<Record<string, any>> {
        const ports: Array<{ internal: number; external: number }> = [];
        for (const p of inputs.ports ?? []) {
            ports.push({ ...p, internal: p.internal, external: await freePort() });
        }
        const container = new DeclaredContainer(inputs.image)
            .withName(inputs.name)
            .withHostname(inputs.hostname ?? inputs.name)
            .withEntrypoint(inputs.entrypoints)
            .withCopyArchivesToContainer([{ tar: Readable.from(uploadsArchive(inputs.uploads ?? [])), target: "/" }])
            .withBindMounts((inputs.volumes ?? []).map((v: any) => ({ source: v.volumeName, target: v.containerPath, mode: "rw" as const })))
            // On free host ports rather than the configured ones, so parallel runs and the host's own services never clash.
            .withExposedPorts(...ports.map((p) => ({ container: p.internal, host: p.external })))
            .withUlimits(Object.fromEntries((inputs.ulimits ?? []).map((u: any) => [u.name, { soft: u.soft, hard: u.hard }])))
            .withEngineOptions({
                network: inputs.networksAdvanced[0],
                restart: inputs.restart,
                stopSignal: inputs.stopSignal,
                stopTimeout: inputs.stopTimeout,
                healthcheck: inputs.healthcheck,
            })
            .withWaitStrategy(inputs.wait ? Wait.forHealthCheck() : Wait.forListeningPorts())
            .withStartupTimeout((inputs.waitTimeout ?? 60) * 1000);
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

    private async runCommand(name: string, inputs: Record<string, any>): Promise<Record<string, any>> {
        const result = await run("/bin/sh", ["-c", inputs.create], {
            env: { ...process.env, ...(inputs.environment ?? {}) },
            timeout: 300_000,
        }).catch((error) => {
            throw new Error(`command ${name} failed: ${error.stderr || error.message}`);
        });
        return { stdout: result.stdout, stderr: result.stderr };
    }

    /**
     * Deletes resources the way `pulumi up` does when the program stops
     * declaring them: containers stopped gracefully and removed, volumes
     * removed, commands' `delete` run. Callers list them dependents first.
     */
    async destroy(names: readonly string[]): Promise<void> {
        for (const name of names) {
            const resource = this.declared.get(name);
            if (resource === undefined) {
                throw new Error(`no resource named ${name} was created`);
            }
            await this.deleteResource(resource);
            this.declared.delete(name);
        }
    }

    /** Starts an update: the next program run is compared with the resources that exist now. */
    beginUpdate(): void {
        this.previous = this.declared;
        this.declared = new Map();
    }

    /**
     * Ends an update: whatever the program no longer declares is deleted,
     * newest first, so dependents go before what they depend on.
     */
    async finishUpdate(): Promise<void> {
        const leftovers = [...this.previous.entries()].reverse();
        this.previous = new Map();
        for (const [, resource] of leftovers) {
            await this.deleteResource(resource);
        }
    }

    private async deleteResource(resource: DeclaredResource): Promise<void> {
        const docker = await this.dockerode();
        switch (resource.type) {
            case "docker:index/container:Container": {
                const container = docker.getContainer(resource.inputs.name);
                await container.stop({ t: resource.inputs.stopTimeout ?? 10 }).catch(ignoreNotRunning);
                await container.remove();
                return;
            }
            case "docker:index/volume:Volume":
                await docker.getVolume(resource.inputs.name).remove();
                return;
            case "docker:index/network:Network":
                await docker.getNetwork(resource.inputs.name).remove();
                return;
            case "command:local:Command":
                if (resource.inputs.delete) {
                    await run("/bin/sh", ["-c", resource.inputs.delete], { timeout: 300_000 });
                }
                return;
            default:
                // Random values, certificates, images and components live only in state.
                return;
        }
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
        await Promise.all(this.created.networks.map((n) => docker.getNetwork(n).remove().catch(ignoreMissing)));
    }
}
