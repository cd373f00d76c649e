import type { ResourceValidationPolicy } from "@pulumi/policy";
import { FILES, MONITORING_FILES } from "../../components/render/paths";
import { basename, pgbouncerSettings, postgresqlConf, type Upload, uploads, validateContainer } from "./containers";

/** The program's own files that hold passwords, verifiers or private keys. */
const PROGRAM_CREDENTIAL_FILES = new Set<string>([
    FILES.bootstrapSql,
    FILES.pgpass,
    FILES.userlist,
    FILES.tlsKey,
    MONITORING_FILES.grafanaAdminPassword,
]);
/** File names that say they hold a credential. */
const CREDENTIAL_NAME = /pgpass|passw(or)?d|secret|\.key$/i;

/** Files the services' own configuration names as secrets: the userlist and private keys. */
function configuredCredentialFiles(props: Record<string, any>): string[] {
    const pgbouncer = pgbouncerSettings(props);
    const postgres = postgresqlConf(props);
    return [
        pgbouncer?.get("auth_file"),
        pgbouncer?.get("client_tls_key_file"),
        pgbouncer?.get("server_tls_key_file"),
        postgres?.get("ssl_key_file"),
    ].filter((file): file is string => file !== undefined && file !== "");
}

function isRoot(owner: string): boolean {
    return owner === "0" || owner === "root";
}

/** Why an upload holding credentials is readable by others, or undefined when it is private. */
export function exposure(upload: Upload): string | undefined {
    // Docker's defaults for an upload: mode 0644, owned by root.
    const permissions = upload.permissions ?? "0644";
    const owner = upload.owner ?? "0";
    const limit = isRoot(owner) ? 0o640 : 0o600;
    if ((parseInt(permissions, 8) & ~limit) === 0) {
        return undefined;
    }
    return `${upload.file} holds credentials but is ${permissions} owned by ${owner}; it must be at most 0600, or 0640 when owned by root`;
}

export const credentialFilesPrivate: ResourceValidationPolicy = {
    name: "credential-files-private",
    description:
        "Files holding passwords, verifiers or private keys (userlist, password files, bootstrap SQL, TLS keys) are readable by their owner only: at most 0600, or 0640 when owned by root, the rule PostgreSQL applies to its own key.",
    enforcementLevel: "mandatory",
    // Reads the files' names, modes and owners, never their (secret) contents.
    validateResource: validateContainer((props, _args, reportViolation) => {
        const credentialFiles = new Set([...PROGRAM_CREDENTIAL_FILES, ...configuredCredentialFiles(props)]);
        for (const upload of uploads(props)) {
            if (!credentialFiles.has(upload.file) && !CREDENTIAL_NAME.test(basename(upload.file))) {
                continue;
            }
            const problem = exposure(upload);
            if (problem !== undefined) {
                reportViolation(problem);
            }
        }
    }),
};
