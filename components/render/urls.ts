export interface ConnectionTarget {
    readonly user: string;
    readonly password: string;
    readonly host: string;
    readonly port: number;
    readonly database: string;
    /** libpq sslmode to put in the URL, if any. */
    readonly sslmode?: string;
}

/** A `postgresql://` URL with user and password percent-encoded. */
export function connectionUrl(t: ConnectionTarget): string {
    const query = t.sslmode ? `?sslmode=${encodeURIComponent(t.sslmode)}` : "";
    return `postgresql://${encodeURIComponent(t.user)}:${encodeURIComponent(t.password)}@${t.host}:${t.port}/${encodeURIComponent(t.database)}${query}`;
}
