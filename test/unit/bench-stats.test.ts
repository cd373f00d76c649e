// Percentiles by nearest rank: the figures the benchmark reports are samples it saw.
import { describe, expect, it } from "vitest";
import { distribution, percentile, ratio } from "../../bench/stats";

describe("percentile", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

    it("is the smallest sample with at least p% of samples at or below it", () => {
        expect(percentile(hundred, 50)).toBe(50);
        expect(percentile(hundred, 99)).toBe(99);
        expect(percentile(hundred, 99.5)).toBe(100);
        expect(percentile(hundred, 100)).toBe(100);
        expect(percentile(hundred, 0.1)).toBe(1);
        expect(percentile([7, 9, 30], 50)).toBe(9);
        expect(percentile([7, 9, 30, 31], 50)).toBe(9);
        expect(percentile([7, 9, 30, 31], 99)).toBe(31);
        expect(percentile([5], 99)).toBe(5);
    });

    it("refuses no samples and p outside (0, 100]", () => {
        expect(() => percentile([], 50)).toThrow("percentile of no samples");
        expect(() => percentile([1], 0)).toThrow("percentile must be in (0, 100], got 0");
        expect(() => percentile([1], 101)).toThrow("percentile must be in (0, 100], got 101");
    });
});

describe("distribution", () => {
    it("sorts numerically, not as text, and summarises", () => {
        expect(distribution([1000, 9, 200, 30, 5])).toEqual({ count: 5, p50: 30, p99: 1000, max: 1000, mean: 248.8 });
    });

    it("shows slow transactions at p99 only when they are more than 1% of them", () => {
        expect(distribution([...Array(989).fill(1), ...Array(11).fill(500)]).p99).toBe(500);
        expect(distribution([...Array(990).fill(1), ...Array(10).fill(500)]).p99).toBe(1);
    });
});

describe("ratio", () => {
    it("divides, or is undefined when a side is missing or the divisor is 0", () => {
        expect(ratio(2800, 1400)).toBe(2);
        expect(ratio(undefined, 1400)).toBeUndefined();
        expect(ratio(2800, undefined)).toBeUndefined();
        expect(ratio(2800, 0)).toBeUndefined();
    });
});
