// PostgreSQL's resource parameters, derived from the memory and CPUs each
// member's container is limited to. Plain numbers in, plain numbers out:
// nothing here imports Pulumi or the settings, so the validators, the
// renderers and the tests all read the same figures.

/** What one container may use: Docker enforces both as limits. */
export interface NodeResources {
    /** Memory limit in MB (MiB), without swap. */
    readonly memoryMb: number;
    /** Whole CPUs (Docker `cpus`, a CFS quota); at most the Docker host's count, which Docker enforces. */
    readonly cpus: number;
}

/** PostgreSQL's smallest work_mem (guc_tables.c), 64kB: the floor of the derived value. */
export const MIN_WORK_MEM_KB = 64;
/** The most CPUs `postgresCpus` may give a member. */
export const MAX_POSTGRES_CPUS = 256;
/** Background worker slots kept besides the parallel workers: PostgreSQL's default max_worker_processes, as Pigsty's oltp.yml adds 8. */
export const BACKGROUND_WORKER_SLOTS = 8;
/** PostgreSQL's default autovacuum_max_workers, rendered so that the memory check and the server agree. */
export const AUTOVACUUM_MAX_WORKERS = 3;
/** pgtune's cap on the parallel workers of one Gather and of one maintenance command outside data warehouses. */
const MAX_WORKERS_PER_COMMAND = 4;
/** pgtune's cap on maintenance_work_mem (8GB). */
const MAX_MAINTENANCE_WORK_MEM_KB = 8 * 1024 * 1024;
/** One WAL segment (16MB), wal_buffers' ceiling when PostgreSQL sizes it itself. */
const WAL_SEGMENT_KB = 16 * 1024;
/** wal_buffers' floor when PostgreSQL sizes it itself (xlog.c XLOGChooseNumBuffers: 8 pages of 8kB). */
const MIN_WAL_BUFFERS_KB = 64;

/** The sized parameters, sizes in kB. */
export interface PostgresSizing {
    /**
     * A quarter of the memory: PostgreSQL's docs ("a reasonable starting value
     * for shared_buffers is 25% of the memory", runtime-config-resource),
     * pgtune and autobase.
     */
    readonly sharedBuffersKb: number;
    /**
     * Three quarters of the memory, the planner's estimate of the cache a
     * query can count on: pgtune and autobase. The container's page cache is
     * charged to its memory limit, so the limit is what the kernel can cache.
     */
    readonly effectiveCacheSizeKb: number;
    /**
     * pgtune's (memory − shared_buffers) / ((max_connections + parallel
     * workers) × 3): each query may run several sorts or hashes at once, and
     * parallel workers sort too. Floored at PostgreSQL's minimum, 64kB, rather
     * than pgtune's 4MB, so that many mostly idle connections (the bench's
     * 2100) still fit a small node; the memory check bounds the result.
     */
    readonly workMemKb: number;
    /** A sixteenth of the memory, at most 8GB: pgtune's OLTP/web formula. */
    readonly maintenanceWorkMemKb: number;
    /**
     * shared_buffers / 32, between 64kB and one WAL segment (16MB): what
     * PostgreSQL picks itself for wal_buffers = -1 (runtime-config-wal),
     * rendered so that the figure shows in the file.
     */
    readonly walBuffersKb: number;
    /** One per CPU: pgtune's max_parallel_workers. */
    readonly maxParallelWorkers: number;
    /** Half the CPUs rounded up, at most 4: pgtune's max_parallel_workers_per_gather for OLTP and web. */
    readonly maxParallelWorkersPerGather: number;
    /** Half the CPUs rounded up, at most 4: pgtune's max_parallel_maintenance_workers. */
    readonly maxParallelMaintenanceWorkers: number;
    /**
     * The parallel workers of the most CPUs allowed (MAX_POSTGRES_CPUS) plus
     * 8 slots for the logical replication launcher and extensions' workers,
     * which also take worker slots (Pigsty's oltp.yml adds 8). Not the
     * member's own CPUs: it is a hot-standby minimum, read only at start, so
     * a CPU change that moved it would restart every member a second time
     * after replacing it, the leader in place when lowered. The cost, measured
     * on PostgreSQL 17 with max_connections 100: 12MB more shared memory
     * (pg_shmem_allocations) at 264 slots than at 16.
     */
    readonly maxWorkerProcesses: number;
}

/** The sized parameters of a member limited to `resources`, serving `maxConnections`. */
export function postgresSizing(resources: NodeResources, maxConnections: number): PostgresSizing {
    const memoryKb = resources.memoryMb * 1024;
    const sharedBuffersKb = Math.floor(memoryKb / 4);
    const maxParallelWorkers = resources.cpus;
    const perCommand = Math.min(Math.ceil(resources.cpus / 2), MAX_WORKERS_PER_COMMAND);
    return {
        sharedBuffersKb,
        effectiveCacheSizeKb: Math.floor((memoryKb * 3) / 4),
        workMemKb: Math.max(Math.floor((memoryKb - sharedBuffersKb) / ((maxConnections + maxParallelWorkers) * 3)), MIN_WORK_MEM_KB),
        maintenanceWorkMemKb: Math.min(Math.floor(memoryKb / 16), MAX_MAINTENANCE_WORK_MEM_KB),
        walBuffersKb: Math.min(Math.max(Math.floor(sharedBuffersKb / 32), MIN_WAL_BUFFERS_KB), WAL_SEGMENT_KB),
        maxParallelWorkers,
        maxParallelWorkersPerGather: perCommand,
        maxParallelMaintenanceWorkers: perCommand,
        maxWorkerProcesses: MAX_POSTGRES_CPUS + BACKGROUND_WORKER_SLOTS,
    };
}

/** What the memory check adds up: the most a member's backends may hold at once, in kB. */
export interface MemoryBudget {
    /** Client backends and parallel workers, each of which may hold work_mem. */
    readonly backends: number;
    /** The autovacuum workers and one operator's VACUUM or CREATE INDEX, each of which may hold maintenance_work_mem. */
    readonly maintenanceSessions: number;
    readonly totalKb: number;
}

/** max_connections × work_mem (and the parallel workers') + shared_buffers + maintenance, against which the memory limit is checked. */
export function memoryBudget(sizing: PostgresSizing, maxConnections: number): MemoryBudget {
    const backends = maxConnections + sizing.maxParallelWorkers;
    const maintenanceSessions = AUTOVACUUM_MAX_WORKERS + 1;
    return {
        backends,
        maintenanceSessions,
        totalKb: backends * sizing.workMemKb + sizing.sharedBuffersKb + maintenanceSessions * sizing.maintenanceWorkMemKb,
    };
}

/** A size in kB as PostgreSQL writes it: in MB when it is a whole number of them ("256MB", "5140kB"). */
export function postgresSize(kb: number): string {
    return kb % 1024 === 0 ? `${kb / 1024}MB` : `${kb}kB`;
}

/**
 * The CPU count as terraform-provider-docker's Read writes `cpus` back into
 * state (helpers.go nanoInt64ToDecimalString: "2.0", but "10." when the
 * count has a zero digit). Passed in any other spelling, the next preview
 * sees a change, and `cpus` is ForceNew: every `pulumi up` would replace
 * the container.
 */
export function dockerCpus(cpus: number): string {
    return String(cpus).includes("0") ? `${cpus}.` : `${cpus}.0`;
}
