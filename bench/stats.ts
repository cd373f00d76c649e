// Order statistics for the benchmark's samples: latencies, lag, round trips.

/**
 * The p-th percentile (0 < p <= 100) by the nearest-rank method: the smallest
 * sample with at least p% of the samples at or below it. Always one of the
 * samples, never an interpolation between two.
 */
export function percentile(sorted: readonly number[], p: number): number {
    if (sorted.length === 0) {
        throw new Error("percentile of no samples");
    }
    if (!(p > 0 && p <= 100)) {
        throw new Error(`percentile must be in (0, 100], got ${p}`);
    }
    return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

export interface Distribution {
    readonly count: number;
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
    readonly mean: number;
}

/** Count, median, 99th percentile, maximum and mean of `samples`. */
export function distribution(samples: readonly number[]): Distribution {
    const sorted = Float64Array.from(samples).sort();
    const values = Array.from(sorted);
    return {
        count: values.length,
        p50: percentile(values, 50),
        p99: percentile(values, 99),
        max: values[values.length - 1],
        mean: values.reduce((sum, v) => sum + v, 0) / values.length,
    };
}

/** a / b, or undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
    return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}
