import type { ResourceValidationPolicy } from "@pulumi/policy";
import { validateContainer } from "./containers";

/** Environment variable names that say they carry a credential. */
const CREDENTIAL_NAME = /PASSW(OR)?D|SECRET|TOKEN|PGPASS|API_?KEY|PRIVATE_?KEY/i;
/** `NAME_FILE`, `NAME__FILE`, `PGPASSFILE`: the variable names a file that holds the credential. */
const FILE_REFERENCE = /FILE$/i;
/** A URL with a password in it (`scheme://user:password@host`). */
const URL_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:[^\s/@]+@/i;
/** libpq's `password=...` keyword, or PGPASSWORD=... in a shell command. */
const KEYWORD_PASSWORD = /\b(password|pgpassword)\s*=\s*[^\s'"]/i;

function holdsPassword(text: string): boolean {
    return URL_PASSWORD.test(text) || KEYWORD_PASSWORD.test(text);
}

export const credentialsNotInContainerConfig: ResourceValidationPolicy = {
    name: "credentials-not-in-container-config",
    description:
        "No container carries a password in its environment, command, entrypoint, health check or labels, which Docker shows to anyone who can inspect it; credentials travel in private files.",
    enforcementLevel: "mandatory",
    validateResource: validateContainer((props, _args, reportViolation) => {
        for (const env of (props.envs ?? []) as string[]) {
            const name = env.slice(0, env.indexOf("=") < 0 ? env.length : env.indexOf("="));
            const value = env.slice(name.length + 1);
            if (CREDENTIAL_NAME.test(name) && !FILE_REFERENCE.test(name) && value !== "") {
                reportViolation(
                    `environment variable ${name} carries a credential; upload it as a 0600 file and pass the file's path (${name}_FILE) instead`,
                );
            } else if (holdsPassword(value)) {
                reportViolation(`environment variable ${name} holds a password inside a connection string; use a password file instead`);
            }
        }
        const places: Array<[string, unknown]> = [
            ["command", props.command],
            ["entrypoint", props.entrypoints],
            ["health check", props.healthcheck?.tests],
            ...((props.labels ?? []) as Array<{ label: string; value: string }>).map((l): [string, unknown] => [
                `label ${l.label}`,
                l.value,
            ]),
        ];
        for (const [where, value] of places) {
            const words: string[] = value === undefined ? [] : Array.isArray(value) ? value : [String(value)];
            if (words.some(holdsPassword)) {
                reportViolation(`${where} holds a password; pass credentials in a password file instead`);
            }
        }
    }),
};
