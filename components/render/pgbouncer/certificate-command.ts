// The command, run where Pulumi runs, that puts PgBouncer's certificate for
// clients and its key on its volume and has a running PgBouncer take them by
// RELOAD: a renewed certificate keeps the container and every client.
import { PGBOUNCER_PORT } from "../../settings";
import { FILES, PGBOUNCER_TLS_FILES } from "../paths";
import { certificateCommand } from "../tls/certificate-command";
import type { VolumeTarget } from "../volume-command";
import { adminFunction } from "./admin-console";

/**
 * PgBouncer 1.24 reads its certificate files again on RELOAD; a pair it
 * cannot load leaves it on the old one, and RELOAD still succeeds, hence the
 * handshake, where it serves TLS to clients (`servesTls`).
 */
export function pgbouncerCertificateCommand(target: VolumeTarget, servesTls: boolean): string {
    return certificateCommand(target, PGBOUNCER_TLS_FILES, {
        service: "PgBouncer",
        configFile: FILES.pgbouncerIni,
        reload: [adminFunction(target), "admin RELOAD >/dev/null"],
        handshakes: servesTls ? [["-starttls", "postgres", "-connect", `127.0.0.1:${PGBOUNCER_PORT}`]] : [],
    });
}
