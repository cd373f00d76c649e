import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { Credentials } from "./credentials";
import { dynamicConfigCommand, leaderSqlCommand, leadOnDeclaredCommand } from "./render/patroni/leader-commands";
import { dynamicConfiguration, runningParameters } from "./render/patroni/patroni-yml";
import { RESTORE_DRILL_SCHEMA } from "./render/pgbackrest/restore-drill";
import { renderBootstrapSql } from "./render/postgres/bootstrap-sql";
import { renderYaml } from "./render/yaml";
import { type ClusterSettings, ROLES } from "./settings";
import { clusterTopology } from "./topology";

export interface ClusterConfigArgs {
    /** Validated stack settings (plain values: they shape the SQL and the dynamic configuration). */
    readonly settings: ClusterSettings;
    readonly credentials: Pick<Credentials, "superuser" | "app" | "replication" | "monitoring" | "rewind" | "restoreDrill">;
    /** The members, the delayed replica's included, which must be running: the commands act on whichever leads. */
    readonly members: readonly pulumi.Resource[];
}

/**
 * The functions pg_rewind reads the source's files with, which Patroni grants
 * its rewind role at bootstrap (patroni/postgresql/bootstrap.py); granted here
 * too, so a cluster restored from a backup taken without them has them.
 */
const REWIND_FUNCTIONS = [
    "pg_ls_dir(text, boolean, boolean)",
    "pg_stat_file(text, boolean)",
    "pg_read_binary_file(text)",
    "pg_read_binary_file(text, bigint, bigint, boolean)",
];

/**
 * What the stack declares about the cluster as a whole, applied on whichever
 * member leads: the lead itself kept on a declared member, Patroni's dynamic
 * configuration in etcd (timings, durability, cluster-wide parameters), and
 * the roles, database, time zone and extensions. Each reruns when what it
 * applies changes, and restarts nothing that does not need it.
 */
export class ClusterConfig extends pulumi.ComponentResource {
    /** The dynamic configuration as applied (YAML). */
    public readonly dynamicConfiguration: pulumi.Output<string>;

    constructor(name: string, args: ClusterConfigArgs, opts?: pulumi.ComponentResourceOptions) {
        super("obcms:database:ClusterConfig", name, args, opts);
        const s = args.settings;
        const t = clusterTopology(s);
        const c = args.credentials;
        const dynamic = renderYaml("Patroni's dynamic configuration, rendered by obcms-database", dynamicConfiguration(s));

        // Reruns when the member list changes, before the update deletes removed members.
        const leaderPlacement = new command.local.Command(
            `${name}-leader-placement`,
            { create: leadOnDeclaredCommand(t.members, t.scope, "no declared member took the lead from a removed one") },
            { parent: this, dependsOn: [...args.members] },
        );
        const dynamicConfig = new command.local.Command(
            `${name}-dynamic-config`,
            { create: dynamicConfigCommand(t.members, t.scope, runningParameters(s), t.delayedReplica), stdin: dynamic },
            { parent: this, dependsOn: [...args.members, leaderPlacement] },
        );

        const sql = pulumi
            .all([
                c.superuser.verifier,
                c.app.verifier,
                c.replication.verifier,
                c.monitoring.verifier,
                c.rewind.verifier,
                c.restoreDrill.verifier,
            ])
            .apply(([superuser, app, replication, monitoring, rewind, restoreDrill]) =>
                renderBootstrapSql({
                    superuser: { name: ROLES.superuser, verifier: superuser, attributes: [], memberOf: [] },
                    roles: [
                        { name: s.appUser, verifier: app, attributes: [], memberOf: [], verifierOnCreateOnly: true },
                        { name: ROLES.replication, verifier: replication, attributes: ["REPLICATION"], memberOf: [] },
                        { name: ROLES.monitoring, verifier: monitoring, attributes: [], memberOf: ["pg_monitor"] },
                        { name: ROLES.rewind, verifier: rewind, attributes: [], memberOf: [], functions: REWIND_FUNCTIONS },
                        // Its canary rows and a WAL switch bracket each drill's target time.
                        { name: ROLES.restoreDrill, verifier: restoreDrill, attributes: [], memberOf: [], functions: ["pg_switch_wal()"] },
                    ],
                    schemas: [{ name: RESTORE_DRILL_SCHEMA, owner: ROLES.restoreDrill }],
                    database: s.database,
                    owner: s.appUser,
                    timezone: s.timezone,
                    extensions: ["pg_stat_statements"],
                }),
            );
        new command.local.Command(
            `${name}-roles`,
            { create: leaderSqlCommand(t.members), stdin: pulumi.secret(sql) },
            { parent: this, dependsOn: [dynamicConfig] },
        );

        this.dynamicConfiguration = pulumi.output(dynamicConfig.stdout).apply(() => dynamic);
        this.registerOutputs({ dynamicConfiguration: this.dynamicConfiguration });
    }
}
