// Grafana's provisioning files: the Prometheus datasource and the file
// provider that loads the project's dashboards, so nothing is set up by hand.
import { renderYaml } from "../yaml";

/** The datasource every dashboard panel queries, by uid. */
export const GRAFANA_DATASOURCE = { type: "prometheus", uid: "obcms-prometheus" } as const;

export interface DatasourceSpec {
    /** Prometheus as Grafana reaches it on the cluster network. */
    readonly url: string;
    /** Prometheus's scrape interval; Grafana derives `$__rate_interval` from it. */
    readonly scrapeIntervalSeconds: number;
}

/** datasources/obcms.yaml: Prometheus, default and read-only in the UI. */
export function renderGrafanaDatasources(spec: DatasourceSpec): string {
    return renderYaml("Rendered by obcms-database; changes here are overwritten.", {
        apiVersion: 1,
        datasources: [
            {
                name: "Prometheus",
                type: GRAFANA_DATASOURCE.type,
                uid: GRAFANA_DATASOURCE.uid,
                access: "proxy",
                url: spec.url,
                isDefault: true,
                editable: false,
                jsonData: { timeInterval: `${spec.scrapeIntervalSeconds}s`, httpMethod: "POST" },
            },
        ],
    });
}

export interface DashboardProviderSpec {
    /** Folder in the Grafana UI. */
    readonly folder: string;
    /** Directory of the dashboard JSON files inside the Grafana container. */
    readonly path: string;
}

/** dashboards/obcms.yaml: a file provider; the dashboards cannot be deleted or saved over in the UI. */
export function renderGrafanaDashboardProviders(spec: DashboardProviderSpec): string {
    return renderYaml("Rendered by obcms-database; changes here are overwritten.", {
        apiVersion: 1,
        providers: [
            {
                name: spec.folder,
                folder: spec.folder,
                type: "file",
                disableDeletion: true,
                allowUiUpdates: false,
                updateIntervalSeconds: 60,
                options: { path: spec.path, foldersFromFilesStructure: false },
            },
        ],
    });
}
