// The monitoring keys: read from stack config with Pulumi.yaml's defaults,
// validated against the cluster's own settings with messages that name the key.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { readMonitoringSettings, readSettings } from "../../components/config";
import { alertLimits, type MonitoringSettings, validateMonitoringSettings } from "../../components/settings";
import { RecordingMocks } from "../../harness/mocks";
import { runProgram } from "../../harness/program";
import { loadStackConfig, projectName, type StackName } from "../../harness/stack-config";
import { production, staging } from "../render/fixtures";
import { defaultMonitoring, withAlerts } from "../support/monitoring-fixtures";

function exactly(message: string): RegExp {
    return new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

async function monitoringFor(stack: StackName, overrides: Record<string, unknown> = {}): Promise<MonitoringSettings> {
    pulumi.runtime.setAllConfig(loadStackConfig(stack, overrides), []);
    await pulumi.runtime.setMocks(new RecordingMocks(), projectName(), stack, false);
    return readMonitoringSettings(readSettings());
}

describe("readMonitoringSettings", () => {
    it("reads Pulumi.yaml's defaults for the staging stack", async () => {
        expect(await monitoringFor("staging")).toEqual(defaultMonitoring);
    });

    it("reads the production stack's own ports, so both stacks fit on one host", async () => {
        expect(await monitoringFor("production")).toEqual({ ...defaultMonitoring, prometheusPort: 9091, grafanaPort: 3001 });
    });

    it("reads every key", async () => {
        const read = await monitoringFor("staging", {
            monitoringEnabled: true,
            grafanaEnabled: false,
            grafanaImage: "registry.example/grafana:11",
            prometheusPort: 19090,
            grafanaPort: 13000,
            prometheusRetention: "1w3d",
            scrapeIntervalSeconds: 30,
            alertForSeconds: 120,
            replicationLagAlertMb: 128,
            replicationLagAlertSeconds: 60,
            slotWalAlertPercent: 70,
            clientWaitAlertSeconds: 10,
            poolSaturationAlertPercent: 95,
            connectionsAlertPercent: 85,
            clientConnectionsAlertPercent: 90,
        });
        expect(read).toEqual({
            enabled: true,
            grafanaEnabled: false,
            grafanaImage: "registry.example/grafana:11",
            prometheusPort: 19090,
            grafanaPort: 13000,
            prometheusRetention: "1w3d",
            scrapeIntervalSeconds: 30,
            alerts: {
                forSeconds: 120,
                replicationLagMb: 128,
                replicationLagSeconds: 60,
                slotWalPercent: 70,
                clientWaitSeconds: 10,
                poolSaturationPercent: 95,
                connectionsPercent: 85,
                clientConnectionsPercent: 90,
            },
        });
    });

    it("fails the program before it declares any resource", async () => {
        const mocks = new RecordingMocks();
        await expect(runProgram({ stack: "staging", overrides: { prometheusPort: 6432 }, mocks })).rejects.toThrow(
            exactly("prometheusPort uses port 6432, which pgbouncerPort already uses; every published port must differ"),
        );
        expect(mocks.resources).toEqual([]);
    });
});

describe("alertLimits", () => {
    it("scales the thresholds to each stack's sizes", () => {
        expect(alertLimits(staging, defaultMonitoring)).toEqual({
            forSeconds: 60,
            replicationLagBytes: 64 * 1024 * 1024,
            replicationLagSeconds: 30,
            slotWalBytes: 1_717_986_918,
            clientWaitSeconds: 5,
            poolServerConnections: 22.5,
            serverConnections: 80,
            clientConnections: 800,
        });
        expect(alertLimits(production, defaultMonitoring)).toMatchObject({ poolServerConnections: 45, clientConnections: 1600 });
        expect(alertLimits({ ...staging, maxSlotWalKeepSizeMb: 1024, maxConnections: 200 }, defaultMonitoring)).toMatchObject({
            slotWalBytes: 858_993_459,
            serverConnections: 160,
        });
    });
});

describe("validateMonitoringSettings", () => {
    it("accepts the defaults for both stacks", () => {
        expect(() => validateMonitoringSettings(defaultMonitoring, staging)).not.toThrow();
        expect(() => validateMonitoringSettings(defaultMonitoring, production)).not.toThrow();
    });

    const rejected: Array<[string, MonitoringSettings, string]> = [
        [
            "a zero scrape interval",
            { ...defaultMonitoring, scrapeIntervalSeconds: 0 },
            "scrapeIntervalSeconds must be a number of seconds from 1 to 3600, got 0",
        ],
        [
            "a fractional scrape interval",
            { ...defaultMonitoring, scrapeIntervalSeconds: 1.5 },
            "scrapeIntervalSeconds must be a number of seconds from 1 to 3600, got 1.5",
        ],
        ["a negative `for`", withAlerts({ forSeconds: -1 }), "alertForSeconds must be a number of seconds from 0 to 86400, got -1"],
        ["a zero lag size", withAlerts({ replicationLagMb: 0 }), "replicationLagAlertMb must be a size in MB from 1 to 1048576, got 0"],
        [
            "a zero lag time",
            withAlerts({ replicationLagSeconds: 0 }),
            "replicationLagAlertSeconds must be a number of seconds from 1 to 86400, got 0",
        ],
        ["a zero wait", withAlerts({ clientWaitSeconds: 0 }), "clientWaitAlertSeconds must be a number of seconds from 1 to 86400, got 0"],
        ["a percentage above 100", withAlerts({ slotWalPercent: 101 }), "slotWalAlertPercent must be a percentage from 1 to 100, got 101"],
        [
            "a zero percentage",
            withAlerts({ poolSaturationPercent: 0 }),
            "poolSaturationAlertPercent must be a percentage from 1 to 100, got 0",
        ],
        [
            "a client percentage above 100",
            withAlerts({ clientConnectionsPercent: 120 }),
            "clientConnectionsAlertPercent must be a percentage from 1 to 100, got 120",
        ],
        [
            "a retention that is not a duration",
            { ...defaultMonitoring, prometheusRetention: "15 days" },
            'prometheusRetention must be a Prometheus duration such as 15d or 1w3d (units y, w, d, h, m, s, ms), got "15 days"',
        ],
        [
            "a zero retention",
            { ...defaultMonitoring, prometheusRetention: "0d" },
            'prometheusRetention must be a Prometheus duration such as 15d or 1w3d (units y, w, d, h, m, s, ms), got "0d"',
        ],
        [
            "a lag threshold the slot cannot hold",
            withAlerts({ replicationLagMb: 2048 }),
            "replicationLagAlertMb (2048) must be below maxSlotWalKeepSizeMb (2048): a replica that far behind has already lost the WAL its slot kept",
        ],
        [
            "a wait threshold PgBouncer never lets a client reach",
            withAlerts({ clientWaitSeconds: 120 }),
            "clientWaitAlertSeconds (120) must be below queryWaitTimeout (120), when PgBouncer gives up on a waiting client",
        ],
        [
            "a connection threshold a full pool always crosses",
            withAlerts({ connectionsPercent: 35 }),
            "connectionsAlertPercent (35) of maxConnections (100) is 35 connections, not above the 35 a server has under normal full load " +
                "(pool 30 + monitoring 5); raise connectionsAlertPercent or maxConnections",
        ],
        [
            "an empty Grafana image",
            { ...defaultMonitoring, grafanaImage: "" },
            'grafanaImage must be an image reference without spaces, got ""',
        ],
        [
            "Prometheus on PgBouncer's port",
            { ...defaultMonitoring, prometheusPort: 6432 },
            "prometheusPort uses port 6432, which pgbouncerPort already uses; every published port must differ",
        ],
        [
            "Grafana on a replica's port",
            { ...defaultMonitoring, grafanaPort: 5433 },
            "grafanaPort uses port 5433, which replicaBasePort already uses; every published port must differ",
        ],
        [
            "Grafana on Prometheus's port",
            { ...defaultMonitoring, grafanaPort: 9090 },
            "grafanaPort uses port 9090, which prometheusPort already uses; every published port must differ",
        ],
        [
            "a port out of range",
            { ...defaultMonitoring, prometheusPort: 70_000 },
            "prometheusPort must be a port from 1 to 65535, got 70000",
        ],
    ];
    it.each(rejected)("rejects %s", (_, monitoring, message) => {
        expect(() => validateMonitoringSettings(monitoring, staging)).toThrow(exactly(message));
    });

    it("lets Prometheus take an unpublished PostgreSQL port (production publishes only PgBouncer)", () => {
        expect(() => validateMonitoringSettings({ ...defaultMonitoring, prometheusPort: 5442 }, production)).not.toThrow();
        expect(() =>
            validateMonitoringSettings({ ...defaultMonitoring, prometheusPort: 5442 }, { ...production, publishPostgresPorts: true }),
        ).toThrow(exactly("prometheusPort uses port 5442, which primaryPort already uses; every published port must differ"));
    });

    it("checks Grafana's keys only when Grafana runs, and nothing when monitoring is off", () => {
        expect(() =>
            validateMonitoringSettings({ ...defaultMonitoring, grafanaEnabled: false, grafanaPort: 6432, grafanaImage: "" }, staging),
        ).not.toThrow();
        expect(() =>
            validateMonitoringSettings({ ...withAlerts({ slotWalPercent: 500 }), enabled: false, prometheusPort: 6432 }, staging),
        ).not.toThrow();
    });
});
