/**
 * What the parts of one worker share about the loop under way: whether there is one, when it started,
 * whether it is stopping, and the error it ends with. Plain fields, since they are read for every task.
 *
 * @module
 */
export class RunState {
  /** A `runLoop` is under way: from its call until its promise settles. */
  inLoop = false;
  /** When the loop started, in epoch ms: shown in this worker's row. */
  startedAt = 0;
  /** No new claims and no new starts: `stop()` was called, or an outcome could not be written. */
  stopping = false;
  /** The error the loop ends with: the first one recorded. */
  fatal: unknown = undefined;

  /** Readies the state for a new loop. */
  reset(): void {
    this.stopping = false;
    this.fatal = undefined;
  }
}
