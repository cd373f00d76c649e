import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        // Integration suites set their own, longer timeouts per suite.
        testTimeout: 30_000,
        hookTimeout: 30_000,
        env: { TESTCONTAINERS_RYUK_DISABLED: "true" },
    },
});
