// An etcd member's config and start script, exactly.

import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { etcdClientUrl, renderEtcdConf } from "../../components/render/etcd/etcd-conf";
import { etcdHealthCheck, renderEtcdStart } from "../../components/render/etcd/start-script";
import { clusterTopology } from "../../components/topology";
import { production, staging } from "./fixtures";

const TLS = {
    "cert-file": "/var/lib/obcms/etcd/server.crt",
    "key-file": "/var/lib/obcms/etcd/server.key",
    "trusted-ca-file": "/etc/obcms/tls/ca.crt",
    "client-cert-auth": true,
};

describe("renderEtcdConf", () => {
    const members = clusterTopology(production).etcd;
    const prefix = "obcms-database-production-etcd";

    it("renders member 2 of production: its own URLs, every peer, TLS with client certificates on both ports", () => {
        const text = renderEtcdConf({ member: members[1], members, clusterToken: "token-3" });
        expect(text.split("\n")[0]).toBe("# etcd member etcd-2, rendered by obcms-database");
        expect(parse(text)).toEqual({
            name: "etcd-2",
            "data-dir": "/var/lib/obcms/etcd/data",
            "listen-client-urls": "https://0.0.0.0:2379",
            "advertise-client-urls": `https://${prefix}-2:2379`,
            "listen-peer-urls": "https://0.0.0.0:2380",
            "initial-advertise-peer-urls": `https://${prefix}-2:2380`,
            "initial-cluster": `etcd-1=https://${prefix}-1:2380,etcd-2=https://${prefix}-2:2380,etcd-3=https://${prefix}-3:2380`,
            "initial-cluster-state": "new",
            "initial-cluster-token": "token-3",
            "listen-metrics-urls": "http://0.0.0.0:2381",
            "client-transport-security": TLS,
            "peer-transport-security": TLS,
            "tls-min-version": "TLS1.2",
            "auto-compaction-mode": "periodic",
            "auto-compaction-retention": "1h",
            logger: "zap",
            "log-outputs": ["stderr"],
        });
    });

    it("renders byte-identical files for equal input, so an unchanged member is never replaced", () => {
        const spec = { member: members[0], members, clusterToken: "t" };
        expect(renderEtcdConf(spec)).toBe(renderEtcdConf({ ...spec, members: [...members] }));
    });

    it("gives a one-member cluster itself as its only peer", () => {
        const [only] = clusterTopology(staging).etcd;
        expect(parse(renderEtcdConf({ member: only, members: [only], clusterToken: "t" }))["initial-cluster"]).toBe(
            "etcd-1=https://obcms-database-staging-etcd-1:2380",
        );
        expect(etcdClientUrl(only)).toBe("https://obcms-database-staging-etcd-1:2379");
    });
});

describe("the etcd member's start script and health check", () => {
    it("execs etcd with the rendered config, so etcd gets the stop signal itself", () => {
        expect(renderEtcdStart().split("\n").slice(-2)).toEqual(["exec etcd --config-file='/etc/obcms/etcd.yml'", ""]);
    });

    it("checks health through the client port with the member's own certificate", () => {
        expect(etcdHealthCheck()).toEqual([
            "etcdctl",
            "--endpoints=https://localhost:2379",
            "--cacert=/etc/obcms/tls/ca.crt",
            "--cert=/var/lib/obcms/etcd/server.crt",
            "--key=/var/lib/obcms/etcd/server.key",
            "--dial-timeout=2s",
            "--command-timeout=3s",
            "endpoint",
            "health",
        ]);
    });
});
