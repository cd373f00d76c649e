// The command, run where Pulumi runs, that puts PgBouncer's certificate for
// clients and its key on its volume and has a running PgBouncer take them by
// RELOAD: a renewed certificate keeps the container and every client.
import { PGBOUNCER_PORT } from "../../settings";
import { shellWord } from "../escape";
import { PGBOUNCER_TLS_FILES } from "../paths";
import { adminFunction, onVolume, pgbouncerRunning, type ReloadTarget } from "./volume-command";

/** The standard input: the certificate's PEM, then the key's. */
export function renderCertificateInput(certPem: string, keyPem: string): string {
    const block = (pem: string) => (pem.endsWith("\n") ? pem : `${pem}\n`);
    return block(certPem) + block(keyPem);
}

/** The PEM blocks of the standard input, by sed range. */
const CERTIFICATE_BLOCK = "/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p";
const KEY_BLOCK = "/^-----BEGIN [A-Z ]*PRIVATE KEY-----$/,/^-----END [A-Z ]*PRIVATE KEY-----$/p";

/** How long the check may wait for PgBouncer's TLS handshake (seconds). */
const HANDSHAKE_SECONDS = 10;

/**
 * Writes the certificate and the key (both 0600, PgBouncer's own) to the
 * volume, each by rename, the pair complete before either is renamed. Before
 * PgBouncer's container exists (the stack's first `pulumi up`), or while it
 * is stopped, that is all: it reads them when it starts. Otherwise PgBouncer
 * reloads, and when it serves TLS (`servesTls`) the command fails unless a
 * handshake with it then shows the certificate written: a pair PgBouncer
 * cannot load leaves it on the old one, and RELOAD does not say so. Sessions
 * already open keep the TLS they negotiated.
 */
export function pgbouncerCertificateCommand(target: ReloadTarget, servesTls: boolean): string {
    const { cert, key } = PGBOUNCER_TLS_FILES;
    const write = [
        "umask 077",
        'pair="$(cat)"',
        `printf '%s\\n' "$pair" | sed -n '${CERTIFICATE_BLOCK}' > ${cert}.new`,
        `printf '%s\\n' "$pair" | sed -n '${KEY_BLOCK}' > ${key}.new`,
        `if [ ! -s ${cert}.new ] || [ ! -s ${key}.new ]; then echo "the input holds no certificate or no private key" >&2; exit 1; fi`,
        `mv ${key}.new ${key}`,
        `mv ${cert}.new ${cert}`,
    ].join("\n");
    const container = shellWord(target.container);
    const fingerprint = "openssl x509 -noout -fingerprint -sha256";
    const handshake = `timeout ${HANDSHAKE_SECONDS} openssl s_client -starttls postgres -connect 127.0.0.1:${PGBOUNCER_PORT} </dev/null 2>/dev/null | ${fingerprint}`;
    const check = servesTls
        ? [
              `written="$(docker exec ${container} ${fingerprint} -in ${cert})"`,
              `served="$(docker exec ${container} sh -c ${shellWord(handshake)} || true)"`,
              'if [ "$served" != "$written" ]; then',
              '  echo "PgBouncer did not take the new certificate on RELOAD (it keeps its old TLS configuration when the new one fails to load); its log says why" >&2',
              "  exit 1",
              "fi",
          ]
        : [];
    return [
        "set -eu",
        'pair="$(cat)"',
        onVolume(target, "pair", write),
        `if ! ${pgbouncerRunning(target)}; then exit 0; fi`,
        adminFunction(target),
        "admin RELOAD >/dev/null",
        ...check,
        "",
    ].join("\n");
}
