import { BlockList, isIPv6 } from "node:net";
import type { PolicyConfigSchema, ResourceValidationPolicy } from "@pulumi/policy";
import { policyConfig } from "./config";
import { validateContainer } from "./containers";

interface Config {
    /** Host address ranges a port may be published on. */
    readonly allowedCidrs: string[];
}

const configSchema: PolicyConfigSchema = {
    properties: {
        allowedCidrs: {
            type: "array",
            items: { type: "string", pattern: "^[0-9a-fA-F:.]+/[0-9]{1,3}$" },
            description: "Host address ranges (CIDR) on which a container may publish a port.",
            default: ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        },
    },
};

function allowed(cidrs: readonly string[]): BlockList {
    const list = new BlockList();
    for (const cidr of cidrs) {
        const [address, prefix] = cidr.split("/");
        list.addSubnet(address, Number(prefix), isIPv6(address) ? "ipv6" : "ipv4");
    }
    return list;
}

/** Docker binds a port published without an address on every address of the host. */
const EVERY_ADDRESS = new Set(["", "0.0.0.0", "::"]);

export const noPublicPorts: ResourceValidationPolicy = {
    name: "no-public-ports",
    description:
        "Containers publish ports (PostgreSQL, PgBouncer, Prometheus, Grafana) only on loopback or private host addresses, never on every address of the host.",
    enforcementLevel: "mandatory",
    configSchema,
    validateResource: validateContainer((props, args, reportViolation) => {
        const { allowedCidrs } = policyConfig<Config>(configSchema, args);
        const ranges = allowed(allowedCidrs);
        for (const port of props.ports ?? []) {
            const ip: string = port.ip ?? "0.0.0.0";
            const where = `publishes port ${port.internal} as host port ${port.external ?? "(any)"} on ${ip}`;
            if (EVERY_ADDRESS.has(ip)) {
                reportViolation(
                    `${where}, every address of the host; publish it on an address in ${allowedCidrs.join(", ")} (publishAddress)`,
                );
            } else if (!ranges.check(ip, isIPv6(ip) ? "ipv6" : "ipv4")) {
                reportViolation(`${where}, outside ${allowedCidrs.join(", ")} (publishAddress)`);
            }
        }
    }),
};
