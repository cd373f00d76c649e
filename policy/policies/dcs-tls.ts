import type { ResourceValidationPolicy } from "@pulumi/policy";
import { etcdConfig, validateContainer } from "./containers";

const URL_KEYS = ["listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"];
const TRANSPORTS = ["client-transport-security", "peer-transport-security"];

export const dcsTls: ResourceValidationPolicy = {
    name: "dcs-tls",
    description:
        "Every etcd member serves clients and peers over TLS only, and takes a request only with a certificate the configured CA signed: whoever can write the store can decide which server leads.",
    enforcementLevel: "mandatory",
    validateResource: validateContainer((props, _args, reportViolation) => {
        const conf = etcdConfig(props);
        if (conf === undefined) {
            return;
        }
        for (const key of URL_KEYS) {
            for (const url of String(conf[key] ?? "").split(",")) {
                if (!url.startsWith("https://")) {
                    reportViolation(`etcd.yml: ${key} "${url}" is not https: the store's traffic would travel in clear text`);
                }
            }
        }
        for (const transport of TRANSPORTS) {
            const security = conf[transport] ?? {};
            if (security["client-cert-auth"] !== true || !security["trusted-ca-file"]) {
                reportViolation(
                    `etcd.yml: ${transport} does not require a certificate from a trusted CA (client-cert-auth, trusted-ca-file): anyone who reaches the port could read and write the cluster's state`,
                );
            }
        }
    }),
};
