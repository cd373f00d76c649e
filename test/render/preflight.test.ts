// The readable-files check every container runs first: exact script, and on
// the project image, a file its service user cannot read stops the container
// at once with a message naming it, while readable files hand over to the
// start script.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { getContainerRuntimeClient } from "testcontainers";
import { describe, expect, it } from "vitest";
import { SERVICE_UID } from "../../components/render/paths";
import { PREFLIGHT_FILE, renderPreflight } from "../../components/render/shell-scripts";
import { uploadsArchive } from "../../harness/docker-mocks";
import { PROJECT_IMAGE } from "../support/promtool";
import { shellSyntaxCheck } from "./fixtures";

const START = "/etc/obcms/start.sh";
const SECRET = "/etc/obcms/tls/server.key";

describe("renderPreflight", () => {
    it("checks each file, then hands over to the start script", () => {
        const script = renderPreflight([START, SECRET, "/etc/obcms/it's.conf"], START);
        expect(script.split("\n").slice(0, 4)).toEqual([
            "#!/bin/sh",
            "# Rendered by obcms-database.",
            "set -eu",
            "for file in '/etc/obcms/start.sh' '/etc/obcms/tls/server.key' '/etc/obcms/it'\\''s.conf'; do",
        ]);
        expect(script.endsWith("exec /bin/sh '/etc/obcms/start.sh'\n")).toBe(true);
        expect(shellSyntaxCheck(script)).toEqual({ status: 0, stderr: "" });
    });
});

/** Runs the preflight on the project image as the service user, with `owner` owning the secret file; returns exit code and log. */
async function runPreflight(owner: number): Promise<{ code: number; log: string }> {
    const uploads = [
        {
            file: PREFLIGHT_FILE,
            content: renderPreflight([START, SECRET], START),
            permissions: "0755",
            owner: SERVICE_UID,
            group: SERVICE_UID,
        },
        { file: START, content: "#!/bin/sh\necho service started\n", permissions: "0755", owner: SERVICE_UID, group: SERVICE_UID },
        { file: SECRET, content: "key\n", permissions: "0600", owner, group: owner },
    ];
    const dockerode = (await getContainerRuntimeClient()).container.dockerode;
    const container = await dockerode.createContainer({
        Image: PROJECT_IMAGE,
        name: `obcms-preflight-${randomBytes(4).toString("hex")}`,
        User: `${SERVICE_UID}:${SERVICE_UID}`,
        Entrypoint: ["/bin/sh", PREFLIGHT_FILE],
        HostConfig: { NetworkMode: "none" },
    });
    try {
        await container.putArchive(Readable.from(uploadsArchive(uploads)), { path: "/" });
        await container.start();
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        const log = (await container.logs({ stdout: true, stderr: true })).toString("utf8");
        return { code: StatusCode, log };
    } finally {
        await container.remove({ force: true });
    }
}

describe("the preflight on the project image", { timeout: 120_000 }, () => {
    it("stops with exit 78 and names the file when the service user cannot read it", async () => {
        const { code, log } = await runPreflight(0);
        expect(code).toBe(78);
        expect(log).toContain(
            `obcms: ${SECRET} is not readable by uid ${SERVICE_UID} (owner 0:0, mode 600): uploads must arrive owned by the service user`,
        );
        expect(log).not.toContain("service started");
    });

    it("hands over to the start script when every file is readable", async () => {
        const { code, log } = await runPreflight(SERVICE_UID);
        expect(code).toBe(0);
        expect(log).toContain("service started");
    });
});
