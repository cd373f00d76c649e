import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { CONTAINER, LOCAL_COMMAND, RANDOM_PASSWORD, uploads } from "./containers";

const words = (value: unknown): string => (Array.isArray(value) ? value.join("\n") : "");

/** What Docker shows to anyone who can inspect a container or read its files: not the private files. */
function containerText(container: PolicyResource): Array<[string, string]> {
    const props = container.props;
    const world = uploads(props).filter((u) => (parseInt(u.permissions ?? "0644", 8) & 0o004) !== 0);
    const labels = ((props.labels ?? []) as Array<{ label: string; value: string }>).map((l) => `${l.label}=${l.value}`);
    return [
        ["environment", words(props.envs)],
        ["command", words(props.command)],
        ["entrypoint", words(props.entrypoints)],
        ["health check", words(props.healthcheck?.tests)],
        ["labels", words(labels)],
        ...world.map((u): [string, string] => [`world-readable file ${u.file}`, u.content ?? ""]),
    ];
}

/**
 * What a command shows on the machine running Pulumi, in its process list and
 * logs: its command lines and environment. Not its standard input.
 */
function commandText(command: PolicyResource): Array<[string, string]> {
    const props = command.props;
    const environment = Object.entries((props.environment ?? {}) as Record<string, string>).map(([name, value]) => `${name}=${value}`);
    return [
        ["create command", String(props.create ?? "")],
        ["update command", String(props.update ?? "")],
        ["delete command", String(props.delete ?? "")],
        ["environment", words(environment)],
    ];
}

const VISIBLE: Record<string, { readonly kind: string; readonly text: (resource: PolicyResource) => Array<[string, string]> }> = {
    [CONTAINER]: { kind: "container", text: containerText },
    [LOCAL_COMMAND]: { kind: "command", text: commandText },
};

export const generatedPasswordsNotExposed: StackValidationPolicy = {
    name: "generated-passwords-not-exposed",
    description:
        "No generated password appears in a container's environment, command, entrypoint, health check, labels or world-readable files, nor in a local command's command lines or environment; they reach servers only in private files, and commands on their standard input.",
    enforcementLevel: "mandatory",
    // Compares values, so at a preview that generates new passwords the SDK
    // reports that it could not run; `pulumi up` runs it on the real values.
    validateStack: (args, reportViolation) => {
        const passwords = args.resources
            .filter((r) => r.type === RANDOM_PASSWORD)
            .map((r) => ({ name: r.name, value: r.props.result as string }));
        for (const resource of args.resources.filter((r) => r.type in VISIBLE)) {
            const { kind, text } = VISIBLE[resource.type];
            for (const [where, shown] of text(resource)) {
                for (const password of passwords.filter((p) => p.value !== "" && shown.includes(p.value))) {
                    reportViolation(`${kind} ${resource.name} shows password ${password.name} in its ${where}`, resource.urn);
                }
            }
        }
    },
};
