// The containers' processes as the host sees them: which they are
// (`docker top`), what memory each holds (`/proc/<pid>/smaps_rollup`) and the
// CPU time it has used (`/proc/<pid>/stat`).

export interface ProcessMemory {
    /** Resident bytes. */
    readonly rss: number;
    /** Proportional set size: shared pages divided among the processes sharing them. */
    readonly pss: number;
    /** Pages only this process maps (Private_Clean + Private_Dirty): what one more process costs. */
    readonly private: number;
}

/** One `/proc/<pid>/smaps_rollup`, sizes in bytes. */
export function parseSmapsRollup(text: string): ProcessMemory {
    const kb = (name: string): number => {
        const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(text);
        if (!match) {
            throw new Error(`smaps_rollup has no ${name} line`);
        }
        return Number(match[1]) * 1024;
    };
    return { rss: kb("Rss"), pss: kb("Pss"), private: kb("Private_Clean") + kb("Private_Dirty") };
}

/** A process of a container, by its PID on the host. */
export interface ContainerProcess {
    readonly pid: number;
    readonly args: string;
}

/** The processes in `docker top <container> -eo pid,args`: host PIDs and command lines. */
export function parseTop(text: string): ContainerProcess[] {
    const [header, ...lines] = text.split("\n").filter((line) => line.trim() !== "");
    if (!/^PID\s+COMMAND$/.test(header ?? "")) {
        throw new Error(`not docker top -eo pid,args output: ${JSON.stringify(header)}`);
    }
    return lines.map((line) => {
        const match = /^(\d+)\s+(.*)$/.exec(line);
        if (!match) {
            throw new Error(`not a docker top line: ${JSON.stringify(line)}`);
        }
        return { pid: Number(match[1]), args: match[2] };
    });
}

/** A client backend, from its process title `postgres: <cluster_name>: <user> <database> <address>(<port>) <activity>`. */
export interface Backend {
    readonly pid: number;
    readonly user: string;
    readonly database: string;
    readonly clientAddress: string;
}

export function clientBackends(processes: readonly ContainerProcess[]): Backend[] {
    return processes.flatMap((p) => {
        const match = /^postgres: [^:]+: (\S+) (\S+) ([0-9a-f.:]+)\(\d+\)/.exec(p.args);
        return match && match[1] !== "walsender" ? [{ pid: p.pid, user: match[1], database: match[2], clientAddress: match[3] }] : [];
    });
}

/**
 * CPU time a process has used (user + system), in clock ticks, from
 * `/proc/<pid>/stat`. Fields are counted after the command name's closing
 * parenthesis, since the name itself may contain spaces.
 */
export function parseStatTicks(text: string): number {
    const fields = text
        .slice(text.lastIndexOf(")") + 2)
        .trim()
        .split(/\s+/);
    // utime and stime are fields 14 and 15 of the line; the name is field 2, the state field 3.
    const utime = Number(fields[14 - 3]);
    const stime = Number(fields[15 - 3]);
    if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
        throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(text)}`);
    }
    return utime + stime;
}
