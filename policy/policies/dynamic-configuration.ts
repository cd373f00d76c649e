// Patroni's dynamic configuration (timings, durability, the parameters every
// member shares) lives in etcd, not in a container. The stack declares it in
// the commands that write it there, on their standard input: one that seeds
// the cluster's config key (`etcdctl put <namespace>/<scope>/config`, read by
// Patroni when a new cluster starts) and one that merges changes into it
// (`patronictl edit-config`). A member's patroni.yml may also carry the
// configuration a new cluster starts with (`bootstrap.dcs`; see patroni.ts).
import type { ReportViolation, ResourceValidation, ResourceValidationArgs } from "@pulumi/policy";
import { LOCAL_COMMAND } from "./containers";
import { asObject, parsePatroniYaml, patroniParameters } from "./patroni";

export interface DynamicConfiguration {
    readonly config: Record<string, any>;
    /** The PostgreSQL parameters it sets (`postgresql.parameters`): name (lower case) → value. */
    readonly parameters: Map<string, string>;
    /** How messages name it. */
    readonly where: string;
    /** Whether a key it leaves out keeps the value etcd holds (a merge), rather than Patroni's default. */
    readonly merges: boolean;
}

/** What writes the dynamic configuration from its standard input, recognised by the command it runs. */
const WRITERS: ReadonlyArray<{ readonly runs: RegExp; readonly where: string; readonly merges: boolean }> = [
    { runs: /\bpatronictl\b.*\bedit-config\b/, where: "the dynamic configuration it applies (patronictl edit-config)", merges: true },
    { runs: /\betcdctl\b.*\bput\b.*\/config\b/, where: "the dynamic configuration it seeds into etcd (etcdctl put)", merges: false },
];

/**
 * A check of the dynamic configuration a command writes into etcd; other
 * resources are not its business. A configuration that does not parse is
 * reported, without quoting it.
 */
export function validateDynamicConfiguration(
    check: (dynamic: DynamicConfiguration, args: ResourceValidationArgs, reportViolation: ReportViolation) => void,
): ResourceValidation {
    return (args, reportViolation) => {
        const create = args.type === LOCAL_COMMAND ? String(args.props.create ?? "") : "";
        const writer = WRITERS.find((w) => create.split("\n").some((line) => w.runs.test(line)));
        if (writer === undefined) {
            return;
        }
        const parsed = parsePatroniYaml(String(args.props.stdin ?? ""));
        if ("invalid" in parsed) {
            reportViolation(`${writer.where} ${parsed.invalid}: Patroni cannot use it, and this check cannot run`);
            return;
        }
        const parameters = patroniParameters(asObject(parsed.config.postgresql).parameters);
        check({ config: parsed.config, parameters, where: writer.where, merges: writer.merges }, args, reportViolation);
    };
}
