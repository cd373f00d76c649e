// Shell lines shared by the commands, run where Pulumi runs, that write files
// to a service's named volume, which the running service then takes without
// a restart.
import { shellWord } from "./escape";
import { SERVICE_UID } from "./paths";

/** The environment variable that names the image the commands write files with. */
export const IMAGE_VARIABLE = "IMAGE";

export interface VolumeTarget {
    /** The service's container. */
    readonly container: string;
    /** Its named volume. */
    readonly volume: string;
    /** Where the container mounts it; the commands mount it there too, so paths are the service's own. */
    readonly mountPath: string;
}

/**
 * Runs `script` (sh) in a throwaway container of the image, as the services'
 * user with the volume mounted and no network, with what the shell variable
 * `variable` holds on its standard input.
 */
export function onVolume(target: VolumeTarget, variable: string, script: string): string {
    return (
        `printf '%s\\n' "$${variable}" | docker run --rm -i --network none --user ${SERVICE_UID}:${SERVICE_UID} ` +
        `--volume ${shellWord(`${target.volume}:${target.mountPath}`)} --entrypoint sh "$${IMAGE_VARIABLE}" -c ${shellWord(script)}`
    );
}

/**
 * Writes what the shell variable `variable` holds to `file` on the volume,
 * by rename so that the service never reads half a file; `private` makes it 0600.
 */
export function writeToVolume(target: VolumeTarget, file: string, variable: string, options: { private?: boolean } = {}): string {
    return onVolume(target, variable, `${options.private ? "umask 077 && " : ""}cat > ${file}.new && mv ${file}.new ${file}`);
}

/** A shell condition: the service's container is running (before the stack's first `pulumi up` has made it, it is not). */
export function containerRunning(target: VolumeTarget): string {
    return `[ "$(docker container inspect --format '{{.State.Running}}' ${shellWord(target.container)} 2>/dev/null || true)" = true ]`;
}
