import type { PolicyConfigSchema, ReportViolation, ResourceValidationPolicy } from "@pulumi/policy";
import { PGBOUNCER_USERLIST_FILE } from "../../components/render/paths";
import { credentialsInputUserlist } from "../../components/render/pgbouncer/credentials-command";
import { policyConfig } from "./config";
import { basename, LOCAL_COMMAND, pgbouncerSettings, uploadedText, validateContainer } from "./containers";
import { type HbaLine, isPasswordVerifier, parseUserlist } from "./parse";
import { validatePostgresServer } from "./patroni";

interface Config {
    /** Password methods PostgreSQL and PgBouncer may use. */
    readonly allowedPasswordMethods: string[];
}

const configSchema: PolicyConfigSchema = {
    properties: {
        allowedPasswordMethods: {
            type: "array",
            items: { type: "string", enum: ["scram-sha-256", "md5"] },
            description: "Password methods PgBouncer's auth_type and pg_hba.conf may use (authMethod).",
            default: ["scram-sha-256"],
        },
    },
};

/** Why a PgBouncer auth_type or pg_hba.conf method is never acceptable. */
const NEVER: Record<string, string> = {
    trust: "lets clients in without a password",
    any: "lets clients in without a password",
    plain: "keeps passwords in plain text",
    password: "sends passwords in plain text",
    ident: "believes the client host's own claim of who the user is",
};
const PASSWORD_METHODS = new Set(["scram-sha-256", "md5"]);

function hbaProblem(line: HbaLine, allowedPasswordMethods: readonly string[]): string | undefined {
    // On the local socket PostgreSQL reads ident as peer: the kernel vouches for the user.
    if (line.method === "ident" && line.type === "local") {
        return undefined;
    }
    if (line.method in NEVER) {
        return NEVER[line.method];
    }
    if (PASSWORD_METHODS.has(line.method) && !allowedPasswordMethods.includes(line.method)) {
        return `uses ${line.method}, not ${allowedPasswordMethods.join(" or ")} (authMethod)`;
    }
    return undefined;
}

function reportPasswords(authFile: string, userlist: string, reportViolation: ReportViolation): void {
    for (const entry of parseUserlist(userlist)) {
        if (!isPasswordVerifier(entry.secret)) {
            reportViolation(
                `PgBouncer's auth_file ${authFile} holds a plain-text password for "${entry.user}", not a SCRAM-SHA-256 or md5 verifier`,
            );
        }
    }
}

export const noTrustOrPlaintextAuth: ResourceValidationPolicy = {
    name: "no-trust-or-plaintext-auth",
    description:
        "PgBouncer and PostgreSQL check passwords with an allowed hash method: no trust, no plain-text passwords, no ident; PgBouncer's userlist holds verifiers, not passwords.",
    enforcementLevel: "mandatory",
    configSchema,
    // Four checks, so that each runs at a first preview unless what it reads is
    // unknown then: patroni.yml and the userlist's verifiers hold or derive from
    // passwords not generated yet.
    validateResource: [
        validateContainer((props, args, reportViolation) => {
            const settings = pgbouncerSettings(props);
            if (settings === undefined) {
                return;
            }
            const { allowedPasswordMethods } = policyConfig<Config>(configSchema, args);
            // PgBouncer's default auth_type is md5.
            const authType = settings.get("auth_type") ?? "md5";
            if (!allowedPasswordMethods.includes(authType)) {
                const why = NEVER[authType] ?? "is not an allowed password method";
                reportViolation(`PgBouncer auth_type = ${authType} ${why}; use ${allowedPasswordMethods.join(" or ")} (authMethod)`);
            }
        }),
        validatePostgresServer(({ hba }, args, reportViolation) => {
            if (hba.lines === undefined) {
                reportViolation(`PostgreSQL reads ${hba.file}, which the container does not carry: who may log in cannot be checked`);
                return;
            }
            const { allowedPasswordMethods } = policyConfig<Config>(configSchema, args);
            for (const line of hba.lines) {
                const why = hbaProblem(line, allowedPasswordMethods);
                if (why !== undefined) {
                    reportViolation(`pg_hba.conf line ${line.lineNumber} "${line.text}" ${why}`);
                }
            }
        }),
        validateContainer((props, _args, reportViolation) => {
            const authFile = pgbouncerSettings(props)?.get("auth_file");
            const text = authFile === undefined ? undefined : uploadedText(props, basename(authFile));
            reportPasswords(authFile ?? "", text ?? "", reportViolation);
        }),
        // The program's userlist reaches PgBouncer's volume through the command that rotates it.
        (args, reportViolation) => {
            if (args.type === LOCAL_COMMAND && String(args.props.create ?? "").includes(PGBOUNCER_USERLIST_FILE)) {
                reportPasswords(PGBOUNCER_USERLIST_FILE, credentialsInputUserlist(String(args.props.stdin ?? "")), reportViolation);
            }
        },
    ],
};
