import { describe, expect, it } from "vitest";
import { type ConnectionTarget, connectionUrl } from "../../components/render/urls";

const TARGET: ConnectionTarget = { user: "obcms_app", password: "p@ss:w/rd#?", host: "127.0.0.1", port: 6432, database: "obcms" };

describe("connectionUrl", () => {
    it("percent-encodes the password", () => {
        expect(connectionUrl(TARGET)).toBe("postgresql://obcms_app:p%40ss%3Aw%2Frd%23%3F@127.0.0.1:6432/obcms");
    });

    it("appends sslmode when given", () => {
        expect(connectionUrl({ ...TARGET, sslmode: "require" })).toBe(
            "postgresql://obcms_app:p%40ss%3Aw%2Frd%23%3F@127.0.0.1:6432/obcms?sslmode=require",
        );
    });

    it("parses back, with new URL(), to the original user, password, host, port, database and sslmode", () => {
        const url = new URL(connectionUrl({ ...TARGET, sslmode: "verify-full" }));
        expect({
            protocol: url.protocol,
            user: decodeURIComponent(url.username),
            password: decodeURIComponent(url.password),
            hostname: url.hostname,
            port: url.port,
            database: decodeURIComponent(url.pathname.slice(1)),
            sslmode: url.searchParams.get("sslmode"),
        }).toEqual({
            protocol: "postgresql:",
            user: "obcms_app",
            password: "p@ss:w/rd#?",
            hostname: "127.0.0.1",
            port: "6432",
            database: "obcms",
            sslmode: "verify-full",
        });
    });

    it.each([
        ["a user with @, : and a space", "o'brien @x:y", "pw"],
        ["a password with a percent sign", "obcms_app", "100%41"],
        ["a password with quotes and backslashes", "obcms_app", `'"\\`],
        ["a password with brackets, slashes and spaces", "obcms_app", "[::1]/ ?&=+"],
        ["unicode", "Ñoño", "東京 Ñoño"],
    ])("keeps %s intact through new URL()", (_what, user, password) => {
        const url = new URL(connectionUrl({ ...TARGET, user, password }));
        expect([decodeURIComponent(url.username), decodeURIComponent(url.password), url.hostname, url.pathname]).toEqual([
            user,
            password,
            "127.0.0.1",
            "/obcms",
        ]);
    });
});
