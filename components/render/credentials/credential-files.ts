import { pgpassField, userlistField } from "../escape";

export interface UserSecret {
    readonly user: string;
    /** A SCRAM or md5 verifier, never a plaintext password. */
    readonly secret: string;
}

/** PgBouncer's auth_file: one `"user" "verifier"` line per user, sorted by user. */
export function renderUserlist(entries: readonly UserSecret[]): string {
    return [...entries]
        .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0))
        .map((e) => `${userlistField(e.user)} ${userlistField(e.secret)}\n`)
        .join("");
}

export interface PgpassEntry {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly user: string;
    readonly password: string;
}

/** A libpq password file (mode 0600), read through PGPASSFILE so no password is on a command line. */
export function renderPgpass(entries: readonly PgpassEntry[]): string {
    return entries.map((e) => `${[e.host, String(e.port), e.database, e.user, e.password].map(pgpassField).join(":")}\n`).join("");
}
