import type { ResourceValidationPolicy } from "@pulumi/policy";
import { asObject, validatePostgresServer } from "./patroni";

/** Patroni's REST API port when `restapi.listen` names none. */
const DEFAULT_REST_PORT = "8008";

/** A username and a password, as `authentication` or the older `auth: "user:password"` (patroni/config.py). */
function hasCredentials(section: Record<string, any>): boolean {
    const authentication = asObject(section.authentication);
    if (authentication.username && authentication.password) {
        return true;
    }
    const auth = typeof section.auth === "string" ? section.auth : "";
    return auth.indexOf(":") > 0 && auth.indexOf(":") < auth.length - 1;
}

/** Python's truth, which Patroni applies to `ctl.insecure`: the string "false" is true. */
function truthy(value: unknown): boolean {
    return value === true || (typeof value === "string" && value !== "") || (typeof value === "number" && value !== 0);
}

export const patroniApiAuthenticated: ResourceValidationPolicy = {
    name: "patroni-api-authenticated",
    description:
        "Every Patroni member's REST API takes its unsafe requests (switchover, restart, reinitialize, configuration changes) only with a username and password, over TLS (restapi certfile, and keyfile unless the certificate file holds the key), and patronictl checks the certificate of the member it sends them to (ctl not insecure).",
    enforcementLevel: "mandatory",
    // Reads patroni.yml, which holds the API's password: no message quotes it.
    validateResource: validatePostgresServer(({ config }, _args, reportViolation) => {
        const restapi = asObject(config.restapi);
        const listen = String(restapi.listen ?? "");
        const port = listen.includes(":") ? listen.slice(listen.lastIndexOf(":") + 1) : DEFAULT_REST_PORT;
        if (!hasCredentials(restapi)) {
            reportViolation(
                `patroni.yml: restapi has no authentication (username and password): anyone who reaches port ${port} could switch the leader over, restart or reinitialize a member, or change the cluster's configuration`,
            );
        }
        // certfile alone turns HTTPS on; keyfile is optional when the certificate file holds the key (patroni/api.py).
        if (!restapi.certfile) {
            reportViolation(
                "patroni.yml: restapi sets no certfile: the API serves plain HTTP, and its password would travel in clear text",
            );
        }
        if (truthy(asObject(config.ctl).insecure)) {
            reportViolation(
                "patroni.yml: ctl is insecure: patronictl would send the API's password to whoever answers, without checking its certificate",
            );
        }
    }),
};
