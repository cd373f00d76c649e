import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { FILES } from "./render/paths";
import { renderCertificateInput } from "./render/tls/certificate-command";
import { IMAGE_VARIABLE } from "./render/volume-command";
import type { ServiceFile } from "./service-container";

/** A server's certificate, signed by the cluster CA, and its private key (secret). */
export interface ServerCertificate {
    readonly certPem: pulumi.Output<string>;
    readonly keyPem: pulumi.Output<string>;
}

/** What a node needs to serve TLS and to verify the servers it connects to. */
export interface NodeTls {
    readonly caCertPem: pulumi.Input<string>;
    readonly certificate: ServerCertificate;
}

/** The CA certificate, for a service that checks others; each keeps its own certificate on its volume. */
export function caFile(caCertPem: pulumi.Input<string>): ServiceFile {
    return { path: FILES.tlsCa, content: caCertPem };
}

/**
 * The command that writes a service's certificate and key to its volume with
 * `script` (a certificateCommand), the pair on its standard input, secret. A
 * renewed certificate changes its input: it runs again, and the service takes
 * the new pair without a restart.
 */
export function certificateOnVolume(
    name: string,
    args: { readonly script: string; readonly certificate: ServerCertificate; readonly image: pulumi.Input<string> },
    opts: pulumi.CustomResourceOptions,
): command.local.Command {
    const { certPem, keyPem } = args.certificate;
    return new command.local.Command(
        name,
        {
            create: args.script,
            stdin: pulumi.secret(pulumi.all([certPem, keyPem]).apply(([cert, key]) => renderCertificateInput(cert, key))),
            environment: { [IMAGE_VARIABLE]: args.image },
        },
        opts,
    );
}

export interface ClusterTlsArgs {
    /** Common name of the CA certificate. */
    readonly caName: string;
    /** Node name → the DNS names and IP addresses its certificate must cover. */
    readonly servers: Readonly<Record<string, { dnsNames: string[]; ipAddresses: string[] }>>;
}

/** Ten years: the CA outlives many server certificate renewals. */
const CA_VALIDITY_HOURS = 10 * 365 * 24;
/** One year for a server certificate. */
const SERVER_VALIDITY_HOURS = 365 * 24;
/** A `pulumi up` within 30 days of expiry issues a new certificate. */
const EARLY_RENEWAL_HOURS = 30 * 24;

function ecdsaKey(name: string, parent: pulumi.Resource): tls.PrivateKey {
    return new tls.PrivateKey(name, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent });
}

/**
 * The stack's own certificate authority and one server certificate per node,
 * so that PgBouncer and the replicas verify the servers they connect to
 * (`verify-full`) and clients can, with the CA certificate from the outputs.
 */
export class ClusterTls extends pulumi.ComponentResource {
    /** PEM of the CA certificate (public). */
    public readonly caCertPem: pulumi.Output<string>;
    public readonly servers: Readonly<Record<string, ServerCertificate>>;

    constructor(name: string, args: ClusterTlsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Tls", name, args, opts);

        const caKey = ecdsaKey(`${name}-ca-key`, this);
        const ca = new tls.SelfSignedCert(
            `${name}-ca`,
            {
                privateKeyPem: caKey.privateKeyPem,
                subject: { commonName: args.caName, organization: "obcms-database" },
                isCaCertificate: true,
                validityPeriodHours: CA_VALIDITY_HOURS,
                allowedUses: ["cert_signing", "crl_signing"],
            },
            { parent: this },
        );
        this.caCertPem = ca.certPem;

        const servers: Record<string, ServerCertificate> = {};
        for (const [node, names] of Object.entries(args.servers)) {
            const key = ecdsaKey(`${name}-${node}-key`, this);
            const request = new tls.CertRequest(
                `${name}-${node}-csr`,
                { privateKeyPem: key.privateKeyPem, subject: { commonName: names.dnsNames[0] }, ...names },
                { parent: this },
            );
            const cert = new tls.LocallySignedCert(
                `${name}-${node}-cert`,
                {
                    certRequestPem: request.certRequestPem,
                    caCertPem: ca.certPem,
                    caPrivateKeyPem: caKey.privateKeyPem,
                    validityPeriodHours: SERVER_VALIDITY_HOURS,
                    earlyRenewalHours: EARLY_RENEWAL_HOURS,
                    // Also a client certificate: pgBackRest's nodes and backup container authenticate each other with it.
                    allowedUses: ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
                },
                { parent: this },
            );
            servers[node] = { certPem: cert.certPem, keyPem: pulumi.secret(key.privateKeyPem) };
        }
        this.servers = servers;

        this.registerOutputs({ caCertPem: this.caCertPem, servers: this.servers });
    }
}
