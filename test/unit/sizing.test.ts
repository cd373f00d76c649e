// The parameters sized from a member's limits: exact figures for the stacks
// and for small and large nodes, and the memory check's limits.
import { describe, expect, it } from "vitest";
import { type ClusterSettings, validateSettings } from "../../components/settings";
import { dockerCpus, memoryBudget, postgresSize, postgresSizing } from "../../components/sizing";
import { nanoCpusString, parseCpus } from "../../harness/provider-model";
import { exactly, production, staging } from "../render/fixtures";

const sized = (memoryMb: number, cpus: number, maxConnections: number) => postgresSizing({ memoryMb, cpus }, maxConnections);

describe("postgresSizing", () => {
    it("sizes the staging and production members (2048 MB, 2 CPUs, 100 connections) as pgtune's web profile would", () => {
        const expected = {
            sharedBuffersKb: 512 * 1024,
            effectiveCacheSizeKb: 1536 * 1024,
            // (2048MB − 512MB) / ((100 + 2) × 3)
            workMemKb: 5140,
            maintenanceWorkMemKb: 128 * 1024,
            walBuffersKb: 16 * 1024,
            maxParallelWorkers: 2,
            maxParallelWorkersPerGather: 1,
            maxParallelMaintenanceWorkers: 1,
            // 256 CPUs' parallel workers + 8
            maxWorkerProcesses: 264,
        };
        expect(postgresSizing(staging.postgresResources, staging.maxConnections)).toEqual(expected);
        expect(postgresSizing(production.postgresResources, production.maxConnections)).toEqual(expected);
    });

    // memory MB, CPUs, connections → shared_buffers, effective_cache_size, work_mem, maintenance_work_mem, wal_buffers,
    // max_parallel_workers, _per_gather, max_parallel_maintenance_workers, max_worker_processes
    it.each([
        [512, 1, 50, "128MB", "384MB", "2570kB", "32MB", "4MB", 1, 1, 1, 264],
        [4096, 4, 100, "1024MB", "3072MB", "10082kB", "256MB", "16MB", 4, 2, 2, 264],
        // Workers per command capped at 4.
        [65536, 16, 100, "16384MB", "49152MB", "144631kB", "4096MB", "16MB", 16, 4, 4, 264],
    ])("sizes a %d MB, %d-CPU member with %d connections", (memoryMb, cpus, connections, ...expected) => {
        const z = sized(memoryMb, cpus, connections);
        expect([
            ...[z.sharedBuffersKb, z.effectiveCacheSizeKb, z.workMemKb, z.maintenanceWorkMemKb, z.walBuffersKb].map(postgresSize),
            z.maxParallelWorkers,
            z.maxParallelWorkersPerGather,
            z.maxParallelMaintenanceWorkers,
            z.maxWorkerProcesses,
        ]).toEqual(expected);
    });

    it("caps maintenance_work_mem at 8GB and floors work_mem and wal_buffers at 64kB", () => {
        expect(sized(1_048_576, 256, 100).maintenanceWorkMemKb).toBe(8 * 1024 * 1024);
        expect(sized(256, 1, 10_000).workMemKb).toBe(64);
        expect(sized(2048, 2, 2100).workMemKb).toBe(249);
    });

    it("sizes max_worker_processes, which a standby may not run below, for the most CPUs allowed: a CPU or memory change leaves it", () => {
        expect(new Set([sized(512, 1, 100), sized(65536, 2, 100), sized(2048, 256, 100)].map((z) => z.maxWorkerProcesses))).toEqual(
            new Set([264]),
        );
        expect(sized(2048, 256, 100).maxParallelWorkers).toBeLessThanOrEqual(sized(2048, 256, 100).maxWorkerProcesses);
    });

    it("adds up the memory check: backends × work_mem + shared_buffers + 4 × maintenance_work_mem", () => {
        expect(memoryBudget(sized(2048, 2, 100), 100)).toEqual({
            backends: 102,
            maintenanceSessions: 4,
            totalKb: 102 * 5140 + 512 * 1024 + 4 * 128 * 1024,
        });
    });
});

describe("the memory check", () => {
    const withResources = (memoryMb: number, cpus: number, maxConnections: number): ClusterSettings => ({
        ...staging,
        maxConnections,
        postgresResources: { memoryMb, cpus },
    });

    it.each([
        [256, 1, 100],
        [512, 1, 100],
        [2048, 2, 2100],
        [65536, 16, 10_000],
    ])("accepts %d MB and %d CPU(s) with %d connections", (memoryMb, cpus, maxConnections) => {
        expect(() => validateSettings(withResources(memoryMb, cpus, maxConnections))).not.toThrow();
    });

    it("rejects connections whose work_mem, at its floor, cannot fit beside shared_buffers and maintenance", () => {
        expect(() => validateSettings(withResources(256, 1, 10_000))).toThrow(
            exactly(
                "postgresMemoryMb (256) cannot hold what maxConnections (10000) may use: 10001 backends × work_mem 64kB + " +
                    "shared_buffers 64MB + 4 × maintenance_work_mem 16MB = 754MB; raise postgresMemoryMb or lower maxConnections",
            ),
        );
        expect(() => validateSettings(withResources(512, 2, 5000))).toThrow(
            exactly(
                "postgresMemoryMb (512) cannot hold what maxConnections (5000) may use: 5002 backends × work_mem 64kB + " +
                    "shared_buffers 128MB + 4 × maintenance_work_mem 32MB = 569MB; raise postgresMemoryMb or lower maxConnections",
            ),
        );
    });

    it.each([
        [255, 2, "postgresMemoryMb must be a size in MB from 256 to 1048576, got 255"],
        [1.5, 2, "postgresMemoryMb must be a size in MB from 256 to 1048576, got 1.5"],
        [2048, 0, "postgresCpus must be a whole number of CPUs from 1 to 256, got 0"],
        [2048, 1.5, "postgresCpus must be a whole number of CPUs from 1 to 256, got 1.5"],
        [2048, 257, "postgresCpus must be a whole number of CPUs from 1 to 256, got 257"],
    ])("rejects %d MB and %d CPUs", (memoryMb, cpus, message) => {
        expect(() => validateSettings(withResources(memoryMb, cpus, 100))).toThrow(exactly(message));
    });
});

describe("postgresSize", () => {
    it.each([
        [64, "64kB"],
        [5140, "5140kB"],
        [1024, "1MB"],
        [524288, "512MB"],
        [16 * 1024 * 1024, "16384MB"],
    ])("writes %d kB as %s", (kb, text) => {
        expect(postgresSize(kb)).toBe(text);
    });
});

describe("dockerCpus", () => {
    it("writes every allowed CPU count as the provider reads it back, so no preview sees a change", () => {
        for (let cpus = 1; cpus <= 256; cpus++) {
            expect(dockerCpus(cpus), String(cpus)).toBe(nanoCpusString(parseCpus(String(cpus))));
        }
        expect([1, 2, 10, 16, 100].map(dockerCpus)).toEqual(["1.0", "2.0", "10.", "16.0", "100."]);
    });
});
