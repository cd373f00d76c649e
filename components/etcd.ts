import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { etcdCertificateCommand } from "./render/etcd/certificate-command";
import { etcdClientUrl, renderEtcdConf } from "./render/etcd/etcd-conf";
import { etcdHealthCheck, renderEtcdStart } from "./render/etcd/start-script";
import { ETCD_FILES, ETCD_VOLUME_DIR } from "./render/paths";
import { seedDynamicConfigCommand } from "./render/patroni/dcs-seed";
import { dynamicConfiguration } from "./render/patroni/patroni-yml";
import { serviceContainer } from "./service-container";
import type { ClusterSettings } from "./settings";
import { caFile, certificateOnVolume, type ServerCertificate } from "./tls";
import { clusterTopology } from "./topology";

export interface EtcdArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** Image with etcd and etcdctl. */
    readonly image: pulumi.Input<string>;
    /** Docker network the members and their clients share. */
    readonly network: pulumi.Input<string>;
    /** PEM of the stack's CA: a client or peer must present a certificate it signed. */
    readonly caCertPem: pulumi.Input<string>;
    /** Each member's certificate, keyed by the member's resource name in the topology. */
    readonly certificates: Readonly<Record<string, ServerCertificate>>;
}

/**
 * The cluster's distributed configuration store: `etcdMembers` etcd members,
 * each with its data and its certificate on a named volume, reachable only
 * over TLS with a certificate from the stack's CA, clients and peers alike.
 * Once they have formed a cluster, Patroni's dynamic configuration is seeded
 * into it, so the members start with it.
 */
export class Etcd extends pulumi.ComponentResource {
    /** The members' client URLs, in member order. */
    public readonly clientUrls: pulumi.Output<string[]>;
    public readonly containerNames: pulumi.Output<string[]>;

    constructor(name: string, args: EtcdArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Etcd", name, args, opts);
        const s = args.settings;
        const members = clusterTopology(s).etcd;
        const clusterToken = `${s.clusterName}-etcd-of-${s.etcdMembers}`;

        const containers = members.map((member) => {
            const volume = new docker.Volume(`${name}-${member.index}-data`, { name: member.volume }, { parent: this });
            // The certificate and key, on the member's volume: etcd reads them at every handshake, so a renewal restarts nothing.
            const certificateCommand = certificateOnVolume(
                `${name}-${member.index}-certificate`,
                { script: etcdCertificateCommand(member), certificate: args.certificates[member.resourceName], image: args.image },
                { parent: this, dependsOn: [volume] },
            );
            return serviceContainer(
                `${name}-${member.index}-container`,
                {
                    containerName: member.container,
                    image: args.image,
                    network: args.network,
                    startScript: renderEtcdStart(),
                    files: [{ path: ETCD_FILES.conf, content: renderEtcdConf({ member, members, clusterToken }) }, caFile(args.caCertPem)],
                    volumes: [{ name: volume.name, mountPath: ETCD_VOLUME_DIR }],
                    healthcheck: etcdHealthCheck(),
                    // Healthy once a quorum has formed: the members start side by side and wait for each other.
                    healthyWithinSeconds: 120,
                    // etcd hands its leadership over and syncs its log on SIGTERM, in well under a second.
                    stopSignal: "SIGTERM",
                    stopGraceSeconds: 30,
                },
                { parent: this, dependsOn: [certificateCommand] },
            );
        });

        // JSON, as Patroni stores it; written only where no cluster has a configuration yet.
        new command.local.Command(
            `${name}-patroni-config-seed`,
            {
                create: seedDynamicConfigCommand(members, clusterTopology(s).scope),
                stdin: JSON.stringify(dynamicConfiguration(s)),
            },
            { parent: this, dependsOn: containers },
        );

        this.clientUrls = pulumi.output(members.map(etcdClientUrl));
        this.containerNames = pulumi.all(containers.map((c) => c.name));
        this.registerOutputs({ clientUrls: this.clientUrls, containerNames: this.containerNames });
    }
}
