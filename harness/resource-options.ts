// The resource options a provider sees (deleteBeforeReplace, retainOnDelete,
// customTimeouts) and the dependencies the engine orders deletes by are not
// part of Pulumi's MockResourceArgs; the harness reads them off each
// registration request as the engine would receive it.
import * as pulumi from "@pulumi/pulumi";
import { parseDuration, type RecordedOptions } from "./provider-model";

/** Mocks that want each resource's options before its `newResource`. */
export interface OptionsRecorder {
    recordOptions(name: string, options: RecordedOptions): void;
}

export function isOptionsRecorder(mocks: unknown): mocks is OptionsRecorder {
    return typeof (mocks as Partial<OptionsRecorder>).recordOptions === "function";
}

function seconds(duration: string | undefined): number | undefined {
    return duration ? parseDuration(duration) / 1e9 : undefined;
}

/** A resource's name, the last part of its URN. */
function nameOf(urn: string): string {
    return urn.slice(urn.lastIndexOf("::") + 2);
}

/** After `setMocks`: hands `mocks` the options of every resource registered from now on, if it records them. */
export function recordResourceOptions(mocks: pulumi.runtime.Mocks): void {
    if (!isOptionsRecorder(mocks)) {
        return;
    }
    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: (req: any, callback: unknown) => unknown };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: unknown) => {
        const timeouts = req.getCustomtimeouts();
        const parent: string = req.getParent();
        const dependencies: string[] = [...req.getDependenciesList(), ...(parent ? [parent] : [])];
        mocks.recordOptions(req.getName(), {
            deleteBeforeReplace: req.getDeletebeforereplace(),
            retainOnDelete: req.getRetainondelete() ?? false,
            timeouts: {
                create: seconds(timeouts?.getCreate()),
                update: seconds(timeouts?.getUpdate()),
                delete: seconds(timeouts?.getDelete()),
            },
            dependencies: [...new Set(dependencies.map(nameOf))],
        });
        return register(req, callback);
    };
}
