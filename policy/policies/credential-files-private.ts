import type { ReportViolation, ResourceValidationPolicy } from "@pulumi/policy";
import { FILES, MONITORING_FILES, PGBOUNCER_USERLIST_FILE } from "../../components/render/paths";
import { basename, pgbouncerSettings, type Upload, uploads, validateContainer } from "./containers";
import { asObject, type PostgresServer, validatePostgresServer } from "./patroni";

/** The program's own files that hold passwords, verifiers or private keys. */
const PROGRAM_CREDENTIAL_FILES = new Set<string>([
    FILES.bootstrapSql,
    FILES.pgpass,
    PGBOUNCER_USERLIST_FILE,
    FILES.patroniConf,
    MONITORING_FILES.grafanaAdminPassword,
]);
/** File names that say they hold a credential. */
const CREDENTIAL_NAME = /pgpass|passw(or)?d|secret|\.key$/i;

/** Files PgBouncer's config names as secrets: the userlist and private keys. */
function pgbouncerCredentialFiles(props: Record<string, any>): string[] {
    const pgbouncer = pgbouncerSettings(props);
    return [pgbouncer?.get("auth_file"), pgbouncer?.get("client_tls_key_file"), pgbouncer?.get("server_tls_key_file")].filter(
        (file): file is string => file !== undefined && file !== "",
    );
}

/** Whether an upload is a credential by the program's paths, its name, or PgBouncer's config: all known at preview. */
function knownCredential(props: Record<string, any>): (upload: Upload) => boolean {
    const files = new Set([...PROGRAM_CREDENTIAL_FILES, ...pgbouncerCredentialFiles(props)]);
    return (upload) => files.has(upload.file) || CREDENTIAL_NAME.test(basename(upload.file));
}

/** Private keys Patroni's config names: its REST API's, patronictl's, its etcd client's and PostgreSQL's. */
function patroniCredentialFiles({ config, parameters }: PostgresServer): Set<unknown> {
    return new Set([
        asObject(config.restapi).keyfile,
        asObject(config.ctl).keyfile,
        asObject(config.etcd3).key,
        asObject(config.etcd).key,
        parameters.get("ssl_key_file"),
    ]);
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

function reportExposed(credentials: readonly Upload[], reportViolation: ReportViolation): void {
    for (const upload of credentials) {
        const problem = exposure(upload);
        if (problem !== undefined) {
            reportViolation(problem);
        }
    }
}

export const credentialFilesPrivate: ResourceValidationPolicy = {
    name: "credential-files-private",
    description:
        "Files holding passwords, verifiers or private keys (userlist, password files, bootstrap SQL, Patroni's config, TLS keys) are readable by their owner only: at most 0600, or 0640 when owned by root, the rule PostgreSQL applies to its own key.",
    enforcementLevel: "mandatory",
    // The first check reads the files' names, modes and owners, never their
    // contents; the second reads patroni.yml (unknown at a first preview) for
    // the files it names that the first did not judge.
    validateResource: [
        validateContainer((props, _args, reportViolation) => {
            reportExposed(uploads(props).filter(knownCredential(props)), reportViolation);
        }),
        validatePostgresServer((server, args, reportViolation) => {
            const judged = knownCredential(args.props);
            const named = patroniCredentialFiles(server);
            reportExposed(
                uploads(args.props).filter((u) => named.has(u.file) && !judged(u)),
                reportViolation,
            );
        }),
    ],
};
