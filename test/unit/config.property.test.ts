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

describe("config keys that reach rendered files", () => {
    it.each(["database", "appUser", "timezone", "publishAddress", "authMethod", "poolMode", "clientTlsSslmode", "auditLog"])(
        "%s: a hostile value is refused naming the key, or is safe to render",
        async (key) => {
            await fc.assert(
                fc.asyncProperty(hostile, async (value) => {
                    await configure({ [key]: value });
                    let settings: ClusterSettings;
                    try {
                        settings = readSettings();
                    } catch (error) {
                        expect((error as Error).message).toContain(key);
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
});
