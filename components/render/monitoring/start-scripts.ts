// Start scripts of the exporters and Prometheus.
import { shellWord } from "../escape";
import { FILES } from "../paths";
import { scriptHeader } from "../shell-scripts";

export interface PostgresExporterStartSpec {
    /** postgresql:// URL of the node without a password: lib/pq reads it from PGPASSFILE. */
    readonly dataSourceName: string;
    readonly configFile: string;
    readonly listenPort: number;
}

/** postgres_exporter for one node; its login password stays in the passfile, out of its environment and command line. */
export function renderPostgresExporterStart(spec: PostgresExporterStartSpec): string {
    return [
        ...scriptHeader(),
        `export PGPASSFILE=${shellWord(FILES.pgpass)}`,
        `export DATA_SOURCE_NAME=${shellWord(spec.dataSourceName)}`,
        [
            `exec prometheus-postgres-exporter`,
            `--config.file=${shellWord(spec.configFile)}`,
            `--web.listen-address=:${spec.listenPort}`,
            // Top statements for the dashboard; pg_stat_statements is preloaded on every node.
            "--collector.stat_statements",
        ].join(" "),
        "",
    ].join("\n");
}

export interface PgbouncerExporterStartSpec {
    /** postgres:// URL of PgBouncer's admin console without a password: lib/pq reads it from PGPASSFILE. */
    readonly connectionString: string;
    readonly listenPort: number;
}

/** pgbouncer_exporter, reading the admin console as the stats user. */
export function renderPgbouncerExporterStart(spec: PgbouncerExporterStartSpec): string {
    return [
        ...scriptHeader(),
        `export PGPASSFILE=${shellWord(FILES.pgpass)}`,
        [
            `exec prometheus-pgbouncer-exporter`,
            `--pgBouncer.connectionString=${shellWord(spec.connectionString)}`,
            // PgBouncer runs in another container: no pid file, no process metrics.
            "--pgBouncer.pid-file=",
            `--web.listen-address=:${spec.listenPort}`,
        ].join(" "),
        "",
    ].join("\n");
}

export interface PrometheusStartSpec {
    readonly configFile: string;
    readonly dataDir: string;
    /** A Prometheus duration, e.g. `15d`. */
    readonly retention: string;
    readonly listenPort: number;
}

/** Prometheus, its data on the volume mounted at `dataDir`. */
export function renderPrometheusStart(spec: PrometheusStartSpec): string {
    return [
        ...scriptHeader(),
        [
            `exec prometheus`,
            `--config.file=${shellWord(spec.configFile)}`,
            `--storage.tsdb.path=${shellWord(spec.dataDir)}`,
            `--storage.tsdb.retention.time=${shellWord(spec.retention)}`,
            `--web.listen-address=:${spec.listenPort}`,
        ].join(" "),
        "",
    ].join("\n");
}
