import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { memberContainer, type PostgresMemberArgs, postgresAccess } from "./postgres-node";
import { clusterTopology } from "./topology";

export type PrimaryArgs = PostgresMemberArgs;

/**
 * Member 1, which bootstraps the cluster: on an empty volume, with no cluster
 * in etcd, its Patroni runs initdb and takes the leader key. Later it is a
 * member like the others and leads only while it holds the key. Its data
 * outlives the container and `pulumi destroy`.
 */
export class Primary extends pulumi.ComponentResource {
    /** Docker name of the container, which is also its host name on the cluster network. */
    public readonly containerName: pulumi.Output<string>;
    public readonly volumeName: pulumi.Output<string>;
    /** Host and port for operators: published on the host, or the container on the cluster network. */
    public readonly host: pulumi.Output<string>;
    public readonly port: pulumi.Output<number>;
    /** Secret: superuser URL, direct to this member, for operators. */
    public readonly url: pulumi.Output<string>;

    constructor(name: string, args: PrimaryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Primary", name, args, opts);
        const member = clusterTopology(args.settings).primary;

        const volume = new docker.Volume(
            `${name}-data`,
            { name: member.volume },
            // A volume of the same name found by a later `pulumi up` is reused, never initialised over.
            { parent: this, retainOnDelete: true },
        );

        const container = memberContainer(name, member, { ...args, volume, healthyWithinSeconds: 300 }, { parent: this });

        this.containerName = container.name;
        this.volumeName = volume.name;
        ({ host: this.host, port: this.port, url: this.url } = postgresAccess(container, args.settings, args.credentials.superuser));
        this.registerOutputs({
            containerName: this.containerName,
            volumeName: this.volumeName,
            host: this.host,
            port: this.port,
            url: this.url,
        });
    }
}
