import type { StackValidationPolicy } from "@pulumi/policy";
import { parse } from "yaml";
import { CONTAINER, uploadedText } from "./containers";
import { readPostgresServer } from "./patroni";

interface PrometheusConfig {
    readonly rule_files?: string[];
    readonly scrape_configs?: Array<{ static_configs?: Array<{ labels?: Record<string, string> }> }>;
}

export const monitoringEnabled: StackValidationPolicy = {
    name: "monitoring-enabled",
    description:
        "A Prometheus with alert rules runs in the stack and scrapes an exporter for every PostgreSQL server (its `instance` label is the server's Patroni member name).",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const containers = args.resources.filter((r) => r.type === CONTAINER);
        const prometheus = containers.flatMap((c) => {
            const text = uploadedText(c.props, "prometheus.yml");
            return text === undefined ? [] : [(parse(text) ?? {}) as PrometheusConfig];
        });
        if (prometheus.length === 0) {
            reportViolation(
                "no container runs Prometheus (none carries a prometheus.yml): nothing watches the cluster or raises an alert (monitoringEnabled)",
            );
            return;
        }
        if (prometheus.every((p) => (p.rule_files ?? []).length === 0)) {
            reportViolation("Prometheus loads no alert rules (rule_files is empty): nothing raises an alert");
        }
        const instances = new Set(
            prometheus.flatMap((p) => (p.scrape_configs ?? []).flatMap((job) => (job.static_configs ?? []).map((s) => s.labels?.instance))),
        );
        for (const container of containers) {
            const server = readPostgresServer(container.props);
            if (server !== undefined && "invalid" in server) {
                reportViolation(server.invalid, container.urn);
            } else if (server?.name !== undefined && !instances.has(server.name)) {
                reportViolation(`Prometheus scrapes no exporter for PostgreSQL server "${server.name}"`, container.urn);
            }
        }
    },
};
