import type * as pulumi from "@pulumi/pulumi";
import { checkedInputs, IMAGE, NO_OPTIONS, type RecordedOptions, readBack } from "./provider-model";
import type { OptionsRecorder } from "./resource-options";

/** Pulumi's wire marker for a secret value: `{ [SECRET_SIG]: SECRET_VALUE, value }`. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** Whether an input arrived at the mock as a secret. */
export function isSecretInput(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SECRET_SIG] === SECRET_VALUE;
}

/** The input with every secret marker replaced by the value it wraps. */
export function revealInputs(value: any): any {
    if (isSecretInput(value)) {
        return revealInputs(value.value);
    }
    if (Array.isArray(value)) {
        return value.map(revealInputs);
    }
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealInputs(v)]));
    }
    return value;
}

/** The id the unit-test mocks give a resource: unique, so a preview can tell which inputs carry it. */
export function mockId(name: string): string {
    return `${name}-id`;
}

export interface RecordedResource {
    readonly type: string;
    readonly name: string;
    /** False for component resources, which a provider never diffs or replaces. */
    readonly custom: boolean;
    /** Inputs with secrets revealed. */
    readonly inputs: Record<string, any>;
    /** Inputs as the engine received them, secret markers included. */
    readonly rawInputs: Record<string, any>;
    /**
     * The inputs as the provider's state holds them after the create (schema
     * defaults filled in, values read back in the provider's own spelling):
     * what the next preview compares the program's inputs against.
     */
    readonly state: Record<string, any>;
    readonly options: RecordedOptions;
}

/**
 * Mocks that record every resource the program declares, with its options,
 * and answer with its inputs, plus the outputs a provider computes:
 * RandomPassword's result, RandomBytes' base64 and Image's digest. Any
 * provider function call is a bug.
 */
export class RecordingMocks implements pulumi.runtime.Mocks, OptionsRecorder {
    readonly resources: RecordedResource[] = [];
    private readonly options = new Map<string, RecordedOptions>();

    /**
     * `renewed` names resources whose provider computes new outputs for the
     * same inputs: the certificates a renewal issues again.
     */
    constructor(private readonly renewed: readonly string[] = []) {}

    recordOptions(name: string, options: RecordedOptions): void {
        this.options.set(name, options);
    }

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        const inputs = revealInputs(args.inputs);
        this.resources.push({
            type: args.type,
            name: args.name,
            custom: args.custom ?? true,
            inputs,
            rawInputs: args.inputs,
            state: readBack(args.type, checkedInputs(args.type, inputs)),
            options: this.options.get(args.name) ?? NO_OPTIONS,
        });
        const issuedAs = this.renewed.includes(args.name) ? `${args.name} renewed` : args.name;
        return { id: mockId(args.name), state: { ...args.inputs, ...computedState(args.type, issuedAs, inputs) } };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        throw new Error(`unexpected provider call ${args.token}`);
    }

    ofType(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }

    named(name: string): RecordedResource {
        const found = this.resources.filter((r) => r.name === name);
        if (found.length !== 1) {
            throw new Error(`expected one resource named ${name}, found ${found.length}`);
        }
        return found[0];
    }
}

/** The stand-in PEM block of a key or certificate the mocks compute for the resource `name`. */
export function mockPem(label: string, name: string): string {
    return `-----BEGIN ${label}-----\n${Buffer.from(name).toString("base64")}\n-----END ${label}-----\n`;
}

/** Deterministic stand-ins for provider-computed outputs, derived from the resource name. */
function computedState(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
    switch (type) {
        case "random:index/randomPassword:RandomPassword":
            return { result: `${name}-value-`.padEnd(inputs.length, "x").slice(0, inputs.length) };
        case "random:index/randomBytes:RandomBytes":
            return { base64: Buffer.from(name.padEnd(inputs.length, "#").slice(0, inputs.length)).toString("base64") };
        case "tls:index/privateKey:PrivateKey":
            return { privateKeyPem: mockPem("EC PRIVATE KEY", name), publicKeyPem: mockPem("PUBLIC KEY", name) };
        case "tls:index/selfSignedCert:SelfSignedCert":
        case "tls:index/locallySignedCert:LocallySignedCert":
            return { certPem: mockPem("CERTIFICATE", name) };
        case "tls:index/certRequest:CertRequest":
            return { certRequestPem: mockPem("CERTIFICATE REQUEST", name) };
        case IMAGE:
            // Without a push, the provider's repoDigest is the bare image ID.
            return { repoDigest: `sha256:${"0".repeat(64)}` };
        default:
            return {};
    }
}
