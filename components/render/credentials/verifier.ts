import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import type { AuthMethod } from "../../settings";

/** PostgreSQL's default `scram_iterations`. */
export const SCRAM_ITERATIONS = 4096;

function hmac(key: Buffer, text: string): Buffer {
    return createHmac("sha256", key).update(text).digest();
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores in pg_authid (RFC 5802/7677):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. PostgreSQL takes
 * it as a pre-hashed password, and PgBouncer, given the same verifier in its
 * userlist, can both check clients and log in to the server with it.
 * Passwords are restricted to printable ASCII by the config module, for which
 * SASLprep is the identity, so the result matches what PostgreSQL computes.
 */
export function scramSha256Verifier(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): string {
    const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
    const storedKey = createHash("sha256").update(hmac(salted, "Client Key")).digest();
    const serverKey = hmac(salted, "Server Key");
    return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** The legacy `md5` verifier: "md5" followed by md5(password || username). */
export function md5Verifier(password: string, username: string): string {
    return `md5${createHash("md5")
        .update(password + username)
        .digest("hex")}`;
}

/** The verifier for `method`; the salt is only used by SCRAM. */
export function passwordVerifier(method: AuthMethod, username: string, password: string, salt: Buffer): string {
    switch (method) {
        case "scram-sha-256":
            return scramSha256Verifier(password, salt);
        case "md5":
            return md5Verifier(password, username);
        default: {
            const never: never = method;
            throw new Error(`unknown auth method ${String(never)}`);
        }
    }
}
