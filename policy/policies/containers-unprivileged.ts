import type { ResourceValidationPolicy } from "@pulumi/policy";
import { validateContainer } from "./containers";

const DOCKER_SOCKETS = new Set(["/var/run/docker.sock", "/run/docker.sock"]);
const NAMESPACES = ["networkMode", "pidMode", "ipcMode", "usernsMode"] as const;

export const containersUnprivileged: ResourceValidationPolicy = {
    name: "containers-unprivileged",
    description:
        "Every container runs as a non-root user, is not privileged, adds no capabilities, shares no namespace with the host and does not mount the Docker socket.",
    enforcementLevel: "mandatory",
    validateResource: validateContainer((props, _args, reportViolation) => {
        const user: string = props.user ?? "";
        const uid = user.split(":")[0];
        if (uid === "") {
            reportViolation("sets no user, so it runs as its image's default user, root in most images");
        } else if (uid === "0" || uid === "root") {
            reportViolation(`runs as root (user "${user}")`);
        }
        if (props.privileged === true) {
            reportViolation("is privileged: it gets every capability and every device of the host");
        }
        const added: string[] = props.capabilities?.adds ?? [];
        if (added.length > 0) {
            reportViolation(`adds capabilities ${added.join(", ")}`);
        }
        for (const mode of NAMESPACES) {
            if (props[mode] === "host") {
                reportViolation(`shares the host's namespace (${mode} = host)`);
            }
        }
        const sources: string[] = [
            ...((props.volumes ?? []) as Array<{ hostPath?: string }>).map((v) => v.hostPath ?? ""),
            ...((props.mounts ?? []) as Array<{ source?: string; type: string }>)
                .filter((m) => m.type === "bind")
                .map((m) => m.source ?? ""),
        ];
        for (const source of sources.filter((s) => DOCKER_SOCKETS.has(s))) {
            reportViolation(`mounts the Docker socket ${source}, which gives it root on the host`);
        }
    }),
};
