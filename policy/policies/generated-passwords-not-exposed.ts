import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { CONTAINER, RANDOM_PASSWORD, uploads } from "./containers";

const words = (value: unknown): string => (Array.isArray(value) ? value.join("\n") : "");

/** What Docker shows to anyone who can inspect a container or read its files: not the private files. */
function visibleText(container: PolicyResource): Array<[string, string]> {
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

export const generatedPasswordsNotExposed: StackValidationPolicy = {
    name: "generated-passwords-not-exposed",
    description:
        "No generated password appears in a container's environment, command, entrypoint, health check, labels or world-readable files; they reach servers only in private files.",
    enforcementLevel: "mandatory",
    // Compares values, so at a preview that generates new passwords the SDK
    // reports that it could not run; `pulumi up` runs it on the real values.
    validateStack: (args, reportViolation) => {
        const passwords = args.resources
            .filter((r) => r.type === RANDOM_PASSWORD)
            .map((r) => ({ name: r.name, value: r.props.result as string }));
        for (const container of args.resources.filter((r) => r.type === CONTAINER)) {
            for (const [where, text] of visibleText(container)) {
                for (const password of passwords.filter((p) => p.value !== "" && text.includes(p.value))) {
                    reportViolation(`container ${container.name} shows password ${password.name} in its ${where}`, container.urn);
                }
            }
        }
    },
};
