import type { ResourceValidationPolicy } from "@pulumi/policy";
import { etcdConfig, validateContainer } from "./containers";
import { asObject, validatePostgresServer } from "./patroni";

const URL_KEYS = ["listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"];
const TRANSPORTS = ["client-transport-security", "peer-transport-security"];
/** Patroni's sections for etcd: the v3 API, and the v2 API etcd 3.5 no longer serves by default. */
const ETCD_SECTIONS = ["etcd3", "etcd"];

/**
 * How Patroni reaches etcd: the scheme of `proxy` or `url` when set,
 * else `protocol`, http by default (patroni/dcs/etcd.py, get_etcd_client).
 */
function protocolOf(section: Record<string, any>): string {
    const url = section.proxy ?? section.url;
    if (typeof url === "string") {
        return url.slice(0, Math.max(url.indexOf("://"), 0)) || "http";
    }
    return String(section.protocol ?? "http");
}

export const dcsTls: ResourceValidationPolicy = {
    name: "dcs-tls",
    description:
        "Every etcd member serves clients and peers over TLS only, and takes a request only with a certificate the configured CA signed; every Patroni member reaches etcd over https, checks etcd's certificate (cacert) and presents its own (cert, key): whoever can write the store can decide which server leads.",
    enforcementLevel: "mandatory",
    validateResource: [
        validateContainer((props, _args, reportViolation) => {
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
        validatePostgresServer(({ config }, _args, reportViolation) => {
            const sections = ETCD_SECTIONS.filter((name) => name in config);
            if (sections.length === 0) {
                reportViolation("patroni.yml has no etcd3 section: Patroni would keep the cluster's state outside the stack's etcd");
            }
            for (const name of sections) {
                const section = asObject(config[name]);
                const protocol = protocolOf(section);
                if (protocol !== "https") {
                    reportViolation(
                        `patroni.yml: ${name} reaches etcd over ${protocol}, not https: who leads would be decided in clear text`,
                    );
                }
                if (!section.cacert) {
                    reportViolation(
                        `patroni.yml: ${name} sets no cacert: Patroni would take any server for etcd, without checking its certificate`,
                    );
                }
                if (!section.cert || !section.key) {
                    reportViolation(
                        `patroni.yml: ${name} presents no client certificate (cert and key): only an etcd that takes requests from anyone could serve it`,
                    );
                }
            }
        }),
    ],
};
