// Pulumi mocks that do for real what the providers would: each Docker
// resource the program declares is created on the local Docker engine through
// testcontainers, each command runs in a shell, each random value is random.
// The SDK registers a resource only once everything it depends on has been
// registered, so the cluster comes up in the order the program declares.
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { randomBytes, randomInt } from "node:crypto";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { GenericContainer, getContainerRuntimeClient, Wait } from "testcontainers";
import type Dockerode from "dockerode";
import { revealInputs } from "./mocks";

const run = promisify(execFile);

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Docker's duration strings as the provider takes them ("30s", "1m30s", "500ms") to nanoseconds. */
export function durationNanos(duration: string | undefined): number | undefined {
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
    withEngineOptions(options: { restart?: string; stopSignal?: string; stopTimeout?: number; healthcheck?: any }): this {
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

export interface CreatedObjects {
    readonly containers: string[];
    readonly volumes: string[];
    readonly networks: string[];
}

export class DockerMocks implements pulumi.runtime.Mocks {
    readonly created: CreatedObjects = { containers: [], volumes: [], networks: [] };
    /** Every resource created, by Pulumi name, with its inputs. */
    private readonly declared = new Map<string, { type: string; inputs: Record<string, any> }>();
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
        const started = Date.now();
        try {
            const inputs = revealInputs(args.inputs);
            const state = await this.create(args.type, args.name, inputs);
            this.declared.set(args.name, { type: args.type, inputs });
            if (process.env.OBCMS_TRACE) console.log(`${((Date.now()) % 1e6) / 1000} ${args.name} ${(Date.now() - started) / 1000}s`);
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
            .withNetworkMode(inputs.networksAdvanced[0].name)
            .withEntrypoint(inputs.entrypoints)
            .withCopyContentToContainer(
                (inputs.uploads ?? []).map((u: any) => ({
                    content: u.content,
                    target: u.file,
                    mode: parseInt(u.permissions ?? (u.executable ? "0755" : "0644"), 8),
                })),
            )
            .withBindMounts((inputs.volumes ?? []).map((v: any) => ({ source: v.volumeName, target: v.containerPath, mode: "rw" as const })))
            // On free host ports rather than the configured ones, so parallel runs and the host's own services never clash.
            .withExposedPorts(...ports.map((p) => ({ container: p.internal, host: p.external })))
            .withUlimits(Object.fromEntries((inputs.ulimits ?? []).map((u: any) => [u.name, { soft: u.soft, hard: u.hard }])))
            .withEngineOptions({
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
        this.created.containers.push(inputs.name);
        try {
            const started = await container.start();
            return { id: started.getId(), ports: ports.map((p) => ({ ...p, ip: "127.0.0.1", protocol: "tcp" })) };
        } catch (error) {
            const logs = await run("docker", ["logs", "--tail", "50", inputs.name]).catch(() => ({ stdout: "", stderr: "" }));
            throw new Error(`${(error as Error).message}\n--- last log lines of ${inputs.name} ---\n${logs.stdout}${logs.stderr}`);
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
        const docker = await this.dockerode();
        for (const name of names) {
            const resource = this.declared.get(name);
            if (resource === undefined) {
                throw new Error(`no resource named ${name} was created`);
            }
            switch (resource.type) {
                case "docker:index/container:Container": {
                    const container = docker.getContainer(resource.inputs.name);
                    await container.stop({ t: resource.inputs.stopTimeout ?? 10 });
                    await container.remove();
                    break;
                }
                case "docker:index/volume:Volume":
                    await docker.getVolume(resource.inputs.name).remove();
                    break;
                case "command:local:Command":
                    await run("/bin/sh", ["-c", resource.inputs.delete], { timeout: 300_000 });
                    break;
                default:
                    throw new Error(`cannot destroy ${resource.type} ${name}`);
            }
            this.declared.delete(name);
        }
    }

    /** Removes every container, volume and network this run created, newest first. */
    async removeAll(): Promise<void> {
        const docker = await this.dockerode();
        const ignoreMissing = (error: { statusCode?: number }) => {
            if (error.statusCode !== 404) {
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
