// Example app stack: the Django app in ./django, on the same Docker engine as
// an obcms-database stack, reading that stack's outputs through a
// StackReference. It joins the cluster's network and reaches PgBouncer by
// its container name; the URLs arrive as 0600 files, never in the environment.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

const config = new pulumi.Config();
const databaseStack = config.require("databaseStack", { pattern: /^[^/\s]+\/[^/\s]+\/[^/\s]+$/ });
const appPort = config.requireNumber("appPort", { min: 1, max: 65535 });
const imagePlatform = config.require("imagePlatform", { allowedValues: ["linux/amd64", "linux/arm64"] });

/** The app runs as this uid, which owns its secret files; the image needs no user for it. */
const APP_UID = "10001";
/** Port gunicorn listens on inside the container (see django/Dockerfile). */
const GUNICORN_PORT = 8000;
const SECRETS_DIR = "/run/secrets/obcms";
const FILES = {
    databaseUrl: `${SECRETS_DIR}/database-url`,
    readonlyDatabaseUrl: `${SECRETS_DIR}/readonly-database-url`,
    secretKey: `${SECRETS_DIR}/secret-key`,
    caCertificate: `${SECRETS_DIR}/ca.crt`,
};

const database = new pulumi.StackReference("database", { name: databaseStack });
const output = (name: string) => database.requireOutput(name) as pulumi.Output<string>;

const image = new docker.Image("image", {
    imageName: "obcms-app:latest",
    // Relative to this project's directory, where Pulumi runs the program: the same inputs from every checkout.
    build: { context: "django", dockerfile: "django/Dockerfile", platform: imagePlatform },
    skipPush: true,
});

const secretKey = new random.RandomPassword("secret-key", { length: 50, special: false });

function appFile(file: string, content: pulumi.Input<string>, permissions: string) {
    return { file, content, permissions, owner: APP_UID, group: APP_UID };
}

const web = new docker.Container(
    "web",
    {
        name: `${pulumi.getProject()}-${pulumi.getStack()}-web`,
        image: image.repoDigest,
        user: `${APP_UID}:${APP_UID}`,
        networksAdvanced: [{ name: output("networkName") }],
        // The stack's URLs are secrets: the content of a secret upload stays
        // encrypted in state, and a file is not inherited by every child
        // process or shown by `docker inspect` as an environment variable is.
        uploads: [
            appFile(FILES.databaseUrl, output("networkDatabaseUrl"), "0600"),
            appFile(FILES.readonlyDatabaseUrl, output("networkReadonlyDatabaseUrl"), "0600"),
            appFile(FILES.secretKey, secretKey.result, "0600"),
            appFile(FILES.caCertificate, output("caCertificate"), "0644"),
        ],
        envs: [
            `DATABASE_URL_FILE=${FILES.databaseUrl}`,
            `READONLY_DATABASE_URL_FILE=${FILES.readonlyDatabaseUrl}`,
            `SECRET_KEY_FILE=${FILES.secretKey}`,
            `DATABASE_CA_FILE=${FILES.caCertificate}`,
        ],
        ports: [{ internal: GUNICORN_PORT, external: appPort, ip: "127.0.0.1" }],
        healthcheck: {
            tests: [
                "CMD",
                "python3",
                "-c",
                `import urllib.request; urllib.request.urlopen("http://127.0.0.1:${GUNICORN_PORT}/healthz", timeout=4)`,
            ],
            interval: "5s",
            timeout: "5s",
            startPeriod: "60s",
            retries: 3,
        },
        // `pulumi up` waits until migrations ran and both pools answer.
        wait: true,
        waitTimeout: 120,
        restart: "unless-stopped",
    },
    // The name is fixed, so the old container goes before its replacement starts.
    { deleteBeforeReplace: true },
);

export const url = web.ports.apply((ports) => {
    const published = ports?.find((p) => p.internal === GUNICORN_PORT)?.external;
    if (published === undefined) {
        throw new Error(`container publishes no host port for ${GUNICORN_PORT}`);
    }
    return `http://127.0.0.1:${published}`;
});
