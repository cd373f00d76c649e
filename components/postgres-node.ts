// What every PostgreSQL member shares as a container: Patroni running
// PostgreSQL, its config (patroni.yml with the member's credentials, the
// program's postgresql.conf and pg_hba.conf), pgBackRest's config and TLS
// server, a data volume with the member's certificate, the optional host
// port, the health check, the graceful stop, and how operators reach it.
import * as command from "@pulumi/command";
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { type Credentials, credentialUrl, type RoleCredential } from "./credentials";
import { FILES, PGBACKREST_FILES, VOLUME_DIR } from "./render/paths";
import { memberCertificateCommand } from "./render/patroni/certificate-command";
import { memberHandoverCommand } from "./render/patroni/leader-commands";
import { renderPatroniConf } from "./render/patroni/patroni-yml";
import { memberHealthCheck, renderMemberStart } from "./render/patroni/start-script";
import { postgresNodePgbackrestConf, renderPgbackrestConf } from "./render/pgbackrest/pgbackrest";
import { hbaSections } from "./render/postgres/hba-rules";
import { postgresqlConfParameters } from "./render/postgres/parameters";
import { renderPgHba } from "./render/postgres/pg-hba";
import { renderPostgresqlConf } from "./render/postgres/postgresql-conf";
import {
    REPLACEMENT_DIGEST_LABEL,
    replacementDigest,
    type ServiceContainerArgs,
    serviceContainer,
    serviceEndpoint,
} from "./service-container";
import { type ClusterSettings, connectHost, directUrlSslmode, POSTGRES_PORT } from "./settings";
import { caFile, certificateOnVolume, type NodeTls } from "./tls";
import { clusterTopology, handoverCandidates, type PostgresMember, possibleMembers } from "./topology";

/** The handover command's only environment variable: the member container's replacementDigest. */
export const REPLACEMENT_DIGEST_VARIABLE = "OBCMS_MEMBER_REPLACEMENT_DIGEST";

/** The passwords a member's Patroni needs in plain text: it logs in with them and writes them to its pgpass. */
export type MemberCredentials = Pick<Credentials, "superuser" | "replication" | "rewind" | "patroniRest">;

export interface PostgresMemberArgs {
    /** Validated stack settings (plain values: they shape the rendered files). */
    readonly settings: ClusterSettings;
    /** Image with PostgreSQL, Patroni, pgBackRest and a `postgres` user. */
    readonly image: pulumi.Input<string>;
    /** Docker network shared with the other members, etcd and PgBouncer. */
    readonly network: pulumi.Input<string>;
    readonly credentials: MemberCredentials;
    /** This member's certificate (server and client) and the cluster CA. */
    readonly tls: NodeTls;
    /** Secret: the backup repository's passphrase, for pgBackRest's archive-push and restores. */
    readonly backupPassphrase: pulumi.Output<string>;
}

/**
 * A member's container (`<name>-container`) on its data volume: Patroni bootstraps, clones,
 * promotes and rewinds PostgreSQL as the cluster needs. Before `pulumi up`
 * replaces it, its handover command (`<name>-handover`) hands the lead to
 * another member if this one holds it (handoverCandidates), through the
 * operator's switchover, which holds PgBouncer's clients meanwhile; an
 * update in place hands nothing over (memberHandoverCommand).
 * Both follow `previous`, the member before it: the members are replaced one
 * at a time, each healthy (the container's health check, Patroni's readiness)
 * before the next one stops, and no two are ever down together. The cost is
 * that a new cluster's replicas are created one after the other, too.
 */
export function memberContainer(
    name: string,
    member: PostgresMember,
    args: PostgresMemberArgs & {
        readonly volume: docker.Volume;
        readonly healthyWithinSeconds: number;
        readonly previous?: pulumi.Resource;
    },
    opts: pulumi.CustomResourceOptions,
): docker.Container {
    const s = args.settings;
    const topology = clusterTopology(s);
    const c = args.credentials;
    const patroniConf = pulumi.secret(
        pulumi
            .all([c.superuser.password, c.replication.password, c.rewind.password, c.patroniRest.password])
            .apply(([superuser, replication, rewind, rest]) =>
                renderPatroniConf({
                    settings: s,
                    scope: topology.scope,
                    member,
                    etcd: topology.etcd,
                    passwords: { superuser, replication, rewind, rest },
                }),
            ),
    );
    const containerArgs: ServiceContainerArgs = {
        containerName: member.container,
        image: args.image,
        network: args.network,
        startScript: renderMemberStart(),
        files: [
            { path: FILES.patroniConf, content: patroniConf, secret: true },
            { path: FILES.postgresqlConf, content: renderPostgresqlConf(postgresqlConfParameters(s)) },
            { path: FILES.pgHba, content: renderPgHba(hbaSections(s)) },
            {
                path: PGBACKREST_FILES.conf,
                content: pulumi.secret(args.backupPassphrase.apply((p) => renderPgbackrestConf(postgresNodePgbackrestConf(s, p)))),
                secret: true,
            },
            caFile(args.tls.caCertPem),
        ],
        volumes: [{ name: args.volume.name, mountPath: VOLUME_DIR }],
        publish: s.publishPostgresPorts ? { internal: POSTGRES_PORT, external: member.hostPort, ip: s.publishAddress } : undefined,
        healthcheck: memberHealthCheck(),
        healthyWithinSeconds: args.healthyWithinSeconds,
        // Patroni's graceful stop: a leader hands its key to a replica that has
        // the shutdown checkpoint, then PostgreSQL stops fast.
        stopSignal: "SIGTERM",
        // The shutdown checkpoint writes every dirty buffer; killed before it,
        // the next start runs crash recovery.
        stopGraceSeconds: 120,
        // PostgreSQL, which Patroni starts detached, and pgBackRest's TLS server are adopted by tini.
        init: true,
        // The limits postgresql.conf is sized for.
        resources: s.postgresResources,
        // The handover reads it: no switchover for a container that stays.
        labelReplacementDigest: true,
    };
    const handover = new command.local.Command(
        `${name}-handover`,
        {
            // A new member leads nothing yet.
            create: "true",
            update: handoverScript(s, member),
            environment: { [REPLACEMENT_DIGEST_VARIABLE]: replacementDigest(containerArgs) },
        },
        { ...opts, dependsOn: args.previous ? [args.previous] : [] },
    );
    // The certificate and key, on the data volume: a renewal is a reload of each service that serves them.
    const certificate = certificateOnVolume(
        `${name}-certificate`,
        { script: memberCertificateCommand(s, member), certificate: args.tls.certificate, image: args.image },
        { ...opts, dependsOn: [args.volume] },
    );
    return serviceContainer(`${name}-container`, containerArgs, { ...opts, dependsOn: [handover, certificate] });
}

/** The script a member's handover command runs before `pulumi up` changes its container, with the declared digest in REPLACEMENT_DIGEST_VARIABLE. */
export function handoverScript(s: ClusterSettings, member: PostgresMember): string {
    if (member.applyDelayMinutes > 0) {
        // Patroni never promotes the delayed replica (nofailover): it has no lead to hand over.
        return "true";
    }
    return memberHandoverCommand(
        member,
        // Every member the stack may have, so that scaling changes no handover: a member that does not run is skipped.
        handoverCandidates(possibleMembers(s), member),
        clusterTopology(s).scope,
        { container: member.container, label: REPLACEMENT_DIGEST_LABEL, variable: REPLACEMENT_DIGEST_VARIABLE },
    );
}

/** Where operators reach a member, and the superuser URL for it (secret). */
export function postgresAccess(container: docker.Container, s: ClusterSettings, superuser: RoleCredential) {
    const endpoint = serviceEndpoint(container, POSTGRES_PORT, s.publishPostgresPorts ? connectHost(s) : undefined);
    return { ...endpoint, url: credentialUrl(superuser, endpoint.host, endpoint.port, s.database, directUrlSslmode(s)) };
}
