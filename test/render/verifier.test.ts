import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { md5Verifier, passwordVerifier, SCRAM_ITERATIONS, scramSha256Verifier } from "../../components/render/credentials/verifier";

const SALT = Buffer.from("CqSVhHrC1nBGOv0XEXXA/g==", "base64");

/**
 * What PostgreSQL itself stored for `CREATE ROLE ... PASSWORD 'MySecurePass123'`
 * (scram-sha-256, PostgreSQL's default 4096 iterations); its salt is SALT.
 */
const POSTGRES_SCRAM =
    "SCRAM-SHA-256$4096:CqSVhHrC1nBGOv0XEXXA/g==$lmcFalEC0WZcxWwBxhR06VQBSsEmjts0VLlPZKD9Cww=:nxFnOsxscsAc0KHR24sT6xNvP1feMthgFi+VHiR7uXo=";

/** What PostgreSQL stored for the same password and role obcms_app with password_encryption = md5. */
const POSTGRES_MD5 = "md5d2a1fca49af0303efbde6f40bbfe070f";

function hmacSha256(key: Buffer, data: Buffer | string): Buffer {
    return createHmac("sha256", key).update(data).digest();
}

/** RFC 5802 Hi(): U1 = HMAC(str, salt || INT(1)), Ui = HMAC(str, Ui-1), result U1 XOR ... XOR Ui. */
function hi(password: string, salt: Buffer, iterations: number): Buffer {
    const key = Buffer.from(password, "utf8");
    let u = hmacSha256(key, Buffer.concat([salt, Buffer.from([0, 0, 0, 1])]));
    const result = Buffer.from(u);
    for (let i = 1; i < iterations; i++) {
        u = hmacSha256(key, u);
        for (let j = 0; j < result.length; j++) {
            result[j] ^= u[j];
        }
    }
    return result;
}

/** The verifier derived step by step from RFC 5802 and RFC 7677, in PostgreSQL's storage format. */
function rfc5802Verifier(password: string, salt: Buffer, iterations: number): string {
    const saltedPassword = hi(password, salt, iterations);
    const clientKey = hmacSha256(saltedPassword, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const serverKey = hmacSha256(saltedPassword, "Server Key");
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

describe("verifier", () => {
    describe("scramSha256Verifier", () => {
        it("equals the verifier PostgreSQL stored for the same password and salt", () => {
            expect(scramSha256Verifier("MySecurePass123", SALT)).toBe(POSTGRES_SCRAM);
        });

        it("equals the RFC 5802 derivation, computed step by step", () => {
            expect(rfc5802Verifier("MySecurePass123", SALT, 4096)).toBe(POSTGRES_SCRAM);
            const salt = Buffer.from("0123456789abcdef");
            expect(scramSha256Verifier("p@ss:w/rd#?'\"", salt)).toBe(rfc5802Verifier("p@ss:w/rd#?'\"", salt, 4096));
        });

        it("uses PostgreSQL's default of 4096 iterations unless told otherwise", () => {
            expect(SCRAM_ITERATIONS).toBe(4096);
            expect(scramSha256Verifier("pencil", SALT, 1)).toBe(rfc5802Verifier("pencil", SALT, 1));
            expect(scramSha256Verifier("pencil", SALT, 1).startsWith("SCRAM-SHA-256$1:CqSVhHrC1nBGOv0XEXXA/g==$")).toBe(true);
        });

        it("depends on the salt", () => {
            expect(scramSha256Verifier("MySecurePass123", Buffer.from("another salt"))).not.toBe(POSTGRES_SCRAM);
        });
    });

    describe("md5Verifier", () => {
        it('is "md5" followed by the md5 of password and user name', () => {
            const independent = `md5${createHash("md5").update("MySecurePass123obcms_app", "utf8").digest("hex")}`;
            expect(md5Verifier("MySecurePass123", "obcms_app")).toBe(independent);
            expect(md5Verifier("MySecurePass123", "obcms_app")).toBe(POSTGRES_MD5);
        });
    });

    describe("passwordVerifier", () => {
        it("returns the SCRAM verifier for scram-sha-256", () => {
            expect(passwordVerifier("scram-sha-256", "obcms_app", "MySecurePass123", SALT)).toBe(POSTGRES_SCRAM);
        });

        it("returns the md5 verifier for md5, whatever the salt", () => {
            expect(passwordVerifier("md5", "obcms_app", "MySecurePass123", SALT)).toBe(POSTGRES_MD5);
            expect(passwordVerifier("md5", "obcms_app", "MySecurePass123", Buffer.from("other"))).toBe(POSTGRES_MD5);
        });
    });
});
