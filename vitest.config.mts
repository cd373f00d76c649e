import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        // One file at a time: the integration suites measure timings and load
        // a 2-core machine; run side by side they would skew each other.
        fileParallelism: false,
        // Integration suites set their own, longer timeouts per suite.
        testTimeout: 30_000,
        hookTimeout: 30_000,
        env: { TESTCONTAINERS_RYUK_DISABLED: "true" },
    },
});
