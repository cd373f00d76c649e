// The command, run where Pulumi runs, that puts a service's certificate and
// its key on the service's volume, has a running service take them without a
// restart, and checks that a new handshake shows the new certificate.
import { shellWord } from "../escape";
import { containerRunning, onVolume, type VolumeTarget } from "../volume-command";

/** The standard input: the certificate's PEM, then the key's. */
export function renderCertificateInput(certPem: string, keyPem: string): string {
    const block = (pem: string) => (pem.endsWith("\n") ? pem : `${pem}\n`);
    return block(certPem) + block(keyPem);
}

/** The PEM blocks of the standard input, by sed range. */
const CERTIFICATE_BLOCK = "/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p";
const KEY_BLOCK = "/^-----BEGIN [A-Z ]*PRIVATE KEY-----$/,/^-----END [A-Z ]*PRIVATE KEY-----$/p";

/** How long the check may wait for the service's TLS handshake (seconds). */
const HANDSHAKE_SECONDS = 10;
/**
 * Handshakes, a second apart, before the check gives up: a service that
 * reloads on a signal may answer the first one before it has handled it.
 */
const HANDSHAKE_ATTEMPTS = 5;

/** The certificate's and the key's paths on the volume, as the service reads them. */
export interface CertificateFiles {
    readonly cert: string;
    readonly key: string;
}

export interface CertificateTaking {
    /** The service, as the failure message names it. */
    readonly service: string;
    /**
     * The service's config file in its container, which names the
     * certificate's path. A running container whose config does not was
     * deployed before the certificate moved to the volume: it serves its own
     * until this update replaces it, so nothing reloads or checks it (the
     * check would fail on a renewal, and the replacement waits for it).
     */
    readonly configFile: string;
    /** Shell lines that have the running service take the new files (none: it reads them at every handshake). */
    readonly reload: readonly string[];
    /** `openssl s_client` arguments of each handshake inside its container that must show the new certificate (none where it serves no TLS). */
    readonly handshakes: readonly (readonly string[])[];
    /** Seconds the service may take, beyond the check's few, to act on the reload lines (default 0: at once). */
    readonly reloadWithinSeconds?: number;
}

/**
 * Writes the certificate and the key (both 0600, the service user's) to the
 * volume, each by rename, the pair complete before either is renamed. Before
 * the container exists (the stack's first `pulumi up`), while it is
 * stopped, or while it runs a config that names other files (see
 * `configFile`), that is all: the service reads them when it starts.
 * Otherwise the reload lines run, and the command fails unless every
 * handshake, within a few seconds (and `reloadWithinSeconds`), shows the
 * certificate written: a service that cannot
 * load a new pair may keep the old one without saying so. Connections
 * already open keep the TLS they negotiated.
 */
export function certificateCommand(target: VolumeTarget, files: CertificateFiles, taking: CertificateTaking): string {
    const { cert, key } = files;
    const fingerprint = "openssl x509 -noout -fingerprint -sha256";
    // Ends by printing the written certificate's fingerprint, which the handshake must show.
    const write = [
        "umask 077",
        'pair="$(cat)"',
        `printf '%s\\n' "$pair" | sed -n '${CERTIFICATE_BLOCK}' > ${cert}.new`,
        `printf '%s\\n' "$pair" | sed -n '${KEY_BLOCK}' > ${key}.new`,
        `if [ ! -s ${cert}.new ] || [ ! -s ${key}.new ]; then echo "the input holds no certificate or no private key" >&2; exit 1; fi`,
        `mv ${key}.new ${key}`,
        `mv ${cert}.new ${cert}`,
        `${fingerprint} -in ${cert}`,
    ].join("\n");
    const container = shellWord(target.container);
    const attempts = HANDSHAKE_ATTEMPTS + (taking.reloadWithinSeconds ?? 0);
    // Each handshake in turn, a second apart, until it shows the certificate written.
    const check = taking.handshakes.flatMap((handshake) => [
        "attempt=1",
        `until [ "$(docker exec ${container} sh -c ${shellWord(
            `timeout ${HANDSHAKE_SECONDS} openssl s_client ${handshake.map(shellWord).join(" ")} </dev/null 2>/dev/null | ${fingerprint}`,
        )} || true)" = "$written" ]; do`,
        `  if [ "$attempt" -ge ${attempts} ]; then`,
        `    echo ${shellWord(
            `${taking.service} did not take the new certificate on ${handshake.join(" ")} (it may keep its old one when a new pair fails to load); its log says why`,
        )} >&2`,
        "    exit 1",
        "  fi",
        "  attempt=$((attempt + 1)); sleep 1",
        "done",
    ]);
    return [
        "set -eu",
        'pair="$(cat)"',
        `written="$(${onVolume(target, "pair", write)})"`,
        `if ! ${containerRunning(target)}; then exit 0; fi`,
        `if ! docker exec ${container} grep -qF ${shellWord(cert)} ${shellWord(taking.configFile)}; then exit 0; fi`,
        ...taking.reload,
        ...check,
        "",
    ].join("\n");
}
