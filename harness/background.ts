// Work that runs alongside a test (a sampler, a reader, a writer): started at
// once, stopped and awaited where its result matters. A failure in between is
// kept for stop() instead of being reported as an unhandled rejection, so it
// fails the test that reads the result, and no other.

export class Background<T> {
    private running = true;
    private readonly done: Promise<T>;

    /** Starts `task` at once; it should return soon after `running()` turns false. */
    constructor(task: (running: () => boolean) => Promise<T>) {
        this.done = task(() => this.running);
        // Observed from the start; stop() hands the same rejection to its caller.
        this.done.catch(() => undefined);
    }

    /** Asks the task to finish and waits for it: its result, or its error. Safe to call more than once. */
    stop(): Promise<T> {
        this.running = false;
        return this.done;
    }
}

/**
 * Runs `act` while `task` runs in the background, then stops the task, also
 * when `act` fails. Returns both results; fails with `act`'s error if it
 * failed, otherwise with the task's.
 */
export async function whileRunning<T, R>(
    task: (running: () => boolean) => Promise<T>,
    act: () => Promise<R>,
): Promise<{ result: R; background: T }> {
    const background = new Background(task);
    let result: R;
    try {
        result = await act();
    } catch (error) {
        await background.stop().catch((taskError: unknown) => console.error("background task failed too:", taskError));
        throw error;
    }
    return { result, background: await background.stop() };
}
