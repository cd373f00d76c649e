// Progress of a long run on stderr: the step running, its time so far, and
// the time left by the plan's estimates. On a terminal one line is redrawn
// every second; otherwise a line per step and one every 30 s.

export interface Step {
    readonly label: string;
    /** Expected seconds, for the time-left figure; the step may take at most 3× this (and at least 3 min). */
    readonly estimateSeconds: number;
    readonly run: () => Promise<void>;
}

function clock(seconds: number): string {
    const s = Math.max(0, Math.round(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Runs `steps` in order, each bounded in time, showing progress. */
export async function runSteps(steps: readonly Step[], out: NodeJS.WriteStream = process.stderr): Promise<void> {
    const started = Date.now();
    for (const [i, step] of steps.entries()) {
        const stepStarted = Date.now();
        const later = steps.slice(i + 1).reduce((sum, s) => sum + s.estimateSeconds, 0);
        const line = () => {
            const inStep = (Date.now() - stepStarted) / 1000;
            const left = later + Math.max(0, step.estimateSeconds - inStep);
            return `[${clock((Date.now() - started) / 1000)} elapsed, ~${clock(left)} left] ${i + 1}/${steps.length} ${step.label} (${clock(inStep)})`;
        };
        const tty = out.isTTY;
        const draw = () => (tty ? out.write(`\r\x1b[2K${line()}`) : out.write(`${line()}\n`));
        draw();
        const ticker = setInterval(draw, tty ? 1_000 : 30_000);
        const limitMs = Math.max(3 * step.estimateSeconds, 180) * 1000;
        let timer: NodeJS.Timeout | undefined;
        try {
            const running = step.run();
            // Past its time limit the step is left behind, still running: the race
            // reports the timeout, and a failure of the step after that must not
            // surface later as an unhandled rejection.
            running.catch(() => undefined);
            await Promise.race([
                running,
                new Promise<never>((_, reject) => {
                    timer = setTimeout(() => reject(new Error(`${step.label}: still running after ${limitMs / 1000} s`)), limitMs);
                }),
            ]);
        } finally {
            clearInterval(ticker);
            clearTimeout(timer);
            if (tty) {
                out.write(`\r\x1b[2K${line()} done\n`);
            }
        }
    }
}
