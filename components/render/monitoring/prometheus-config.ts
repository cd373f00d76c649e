import { renderYaml } from "../yaml";
import type { ScrapeJob } from "./prometheus-targets";

export interface PrometheusConfigSpec {
    readonly scrapeIntervalSeconds: number;
    /** Attached to alerts and series that leave this Prometheus (e.g. for an Alertmanager). */
    readonly externalLabels: Readonly<Record<string, string>>;
    /** Rule files, as paths inside the Prometheus container. */
    readonly ruleFiles: readonly string[];
    readonly jobs: readonly ScrapeJob[];
}

/** Prometheus's default scrape timeout, which must not exceed the interval. */
const DEFAULT_SCRAPE_TIMEOUT_SECONDS = 10;

/**
 * prometheus.yml: rules evaluated as often as targets are scraped, static
 * targets with their labels; a job with a CA file is scraped over HTTPS and
 * its servers' certificates verified.
 */
export function renderPrometheusConfig(spec: PrometheusConfigSpec): string {
    const interval = `${spec.scrapeIntervalSeconds}s`;
    return renderYaml("Rendered by obcms-database; changes here are overwritten.", {
        global: {
            scrape_interval: interval,
            scrape_timeout: `${Math.min(spec.scrapeIntervalSeconds, DEFAULT_SCRAPE_TIMEOUT_SECONDS)}s`,
            evaluation_interval: interval,
            external_labels: spec.externalLabels,
        },
        rule_files: spec.ruleFiles,
        scrape_configs: spec.jobs.map((job) => ({
            job_name: job.name,
            ...(job.caFile === undefined ? {} : { scheme: "https", tls_config: { ca_file: job.caFile } }),
            static_configs: job.targets.map((t) => ({ targets: [t.address], labels: t.labels })),
        })),
    });
}
