// Hostile values in every config key that reaches a rendered file or SQL:
// each is either refused with a message naming the key, or accepted only in a
// shape the renderers write safely.
import * as pulumi from "@pulumi/pulumi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readPasswordOverride, readSettings } from "../../components/config";
import { type ClusterSettings, IDENTIFIER } from "../../components/settings";
import { RecordingMocks } from "../../harness/mocks";
import { loadStackConfig, projectName } from "../../harness/stack-config";

const hostile = fc.oneof(
    fc.string({ unit: fc.constantFrom("'", '"', "\\", "\n", "\r", "#", ";", "=", ":", " ", "$", "a", "_", "1", "é", "東", "/") }),
    fc.string({ unit: "grapheme", maxLength: 80 }),
    fc.constant("x".repeat(5000)),
);

async function configure(overrides: Record<string, unknown>, secretKeys: string[] = []): Promise<void> {
    const project = projectName();
    pulumi.runtime.setAllConfig(
        loadStackConfig("staging", overrides),
        secretKeys.map((key) => `${project}:${key}`),
    );
    await pulumi.runtime.setMocks(new RecordingMocks(), project, "staging", false);
}

/** The staging settings with `value` in `key`, or undefined when reading them is refused with a message naming the key. */
async function settingsOrRefusal(key: string, value: unknown): Promise<ClusterSettings | undefined> {
    await configure({ [key]: value });
    try {
        return readSettings();
    } catch (error) {
        expect((error as Error).message).toContain(key);
        return undefined;
    }
}

describe("config keys that reach rendered files", () => {
    it.each(["database", "appUser", "timezone", "publishAddress", "authMethod", "poolMode", "clientTlsSslmode", "auditLog"])(
        "%s: a hostile value is refused naming the key, or is safe to render",
        async (key) => {
            await fc.assert(
                fc.asyncProperty(hostile, async (value) => {
                    const settings = await settingsOrRefusal(key, value);
                    if (settings === undefined) {
                        return;
                    }
                    const accepted = (settings as unknown as Record<string, unknown>)[key] ?? settings.pool.mode;
                    expect(String(accepted)).not.toMatch(/[\r\n'"\\;#]/);
                    if (key === "database" || key === "appUser") {
                        expect(accepted).toMatch(IDENTIFIER);
                    }
                }),
                { numRuns: 60 },
            );
        },
    );

    it("passwords: anything but 16+ printable ASCII characters is refused, naming the key and never the value", async () => {
        await fc.assert(
            fc.asyncProperty(hostile, async (value) => {
                await configure({ appPassword: value }, ["appPassword"]);
                let accepted = false;
                try {
                    accepted = readPasswordOverride("app") !== undefined;
                } catch (error) {
                    const message = (error as Error).message;
                    expect(message).toContain("appPassword");
                    if (value.length > 3) {
                        expect(message).not.toContain(value);
                    }
                    return;
                }
                // Empty means "generate one"; anything else accepted is printable ASCII.
                expect(accepted ? /^[\x21-\x7e]{16,}$/.test(value) : value === "").toBe(true);
            }),
            { numRuns: 200 },
        );
    });

    // Numbers that reach patroni.yml's dynamic configuration: Patroni would
    // adjust a value it dislikes without a word, so the stack refuses it first.
    it("failover keys: any value is refused naming its key, or runs as Patroni's rules allow", async () => {
        const keys = ["synchronousReplicas", "maximumLagOnFailoverMb", "failoverTtl", "failoverLoopWait", "failoverRetryTimeout"];
        const value = fc.oneof(hostile, fc.integer({ min: -5, max: 70 }), fc.double({ min: -1, max: 70, noNaN: true }));
        await fc.assert(
            fc.asyncProperty(fc.constantFrom(...keys), value, async (key, v) => {
                const settings = await settingsOrRefusal(key, v);
                if (settings === undefined) {
                    return;
                }
                const { ttlSeconds, loopWaitSeconds, retryTimeoutSeconds } = settings.failover;
                expect(
                    [ttlSeconds, loopWaitSeconds, retryTimeoutSeconds, settings.synchronousReplicas, settings.maximumLagOnFailoverMb].every(
                        Number.isInteger,
                    ),
                ).toBe(true);
                expect(ttlSeconds).toBeGreaterThanOrEqual(20);
                expect(loopWaitSeconds).toBeGreaterThanOrEqual(1);
                expect(retryTimeoutSeconds).toBeGreaterThanOrEqual(3);
                expect(loopWaitSeconds + 2 * retryTimeoutSeconds).toBeLessThanOrEqual(ttlSeconds);
                expect(settings.synchronousReplicas).toBeGreaterThanOrEqual(0);
                expect(settings.synchronousReplicas).toBeLessThanOrEqual(settings.replicaCount);
                expect(settings.maximumLagOnFailoverMb).toBeGreaterThanOrEqual(0);
            }),
            { numRuns: 200 },
        );
    });
});
