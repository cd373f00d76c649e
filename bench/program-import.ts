// Outside vitest (the benchmark runs under tsx), the program is evaluated
// afresh for each `startStack`/`update` run by dropping the project's own
// modules from Node's require cache; the Pulumi SDK and everything else in
// node_modules stay loaded, as vitest's module reset leaves them too.
import * as path from "node:path";
import { PROJECT_ROOT } from "../harness/stack-config";

const INDEX = path.join(PROJECT_ROOT, "index.ts");
const COMPONENTS = path.join(PROJECT_ROOT, "components") + path.sep;

export async function importProgramFresh(): Promise<Record<string, unknown>> {
    for (const key of Object.keys(require.cache)) {
        if (key === INDEX || key.startsWith(COMPONENTS)) {
            delete require.cache[key];
        }
    }
    return require(INDEX) as Record<string, unknown>;
}
