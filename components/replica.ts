import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { memberContainer, type PostgresMemberArgs, postgresAccess } from "./postgres-node";
import type { PostgresMember } from "./topology";

export interface ReplicaArgs extends PostgresMemberArgs {
    /** This member in the cluster's topology: its names and its position. */
    readonly member: PostgresMember;
    /**
     * The member before this one (member 1 for the first replica): created,
     * and replaced, before this one. Member 1 bootstraps the cluster before
     * any other joins.
     */
    readonly previous: pulumi.Resource;
}

/**
 * A member that joins the cluster member 1 bootstrapped: on an empty volume
 * its Patroni clones the leader, then streams from whoever leads, through
 * the slot Patroni keeps for it. It may be promoted at any time.
 */
export class Replica extends pulumi.ComponentResource {
    public readonly containerName: pulumi.Output<string>;
    /** Host and port for operators: published on the host, or the container on the cluster network. */
    public readonly host: pulumi.Output<string>;
    public readonly port: pulumi.Output<number>;
    /** Secret: superuser URL, direct to this member, for operators. */
    public readonly url: pulumi.Output<string>;

    constructor(name: string, args: ReplicaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:Replica", name, args, opts);
        const { member } = args;

        // Removed with the member: a later member of the same index clones afresh.
        const volume = new docker.Volume(`${name}-data`, { name: member.volume }, { parent: this });

        const container = memberContainer(
            name,
            member,
            // A clone of a large leader takes a while.
            { ...args, volume, healthyWithinSeconds: 1800 },
            { parent: this },
        );

        this.containerName = container.name;
        ({ host: this.host, port: this.port, url: this.url } = postgresAccess(container, args.settings, args.credentials.superuser));
        this.registerOutputs({ containerName: this.containerName, host: this.host, port: this.port, url: this.url });
    }
}
