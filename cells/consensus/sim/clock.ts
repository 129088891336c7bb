/**
 * A virtual {@linkcode Clock} for one incarnation of a simulated member: its timers die with it.
 *
 * @module
 */
import type { Clock } from "../types.ts";
import type { Scheduler } from "./scheduler.ts";

/** A clock on the scheduler's virtual time; `kill()` silences every timer, as a crash would. */
export class SimClock implements Clock {
  #scheduler: Scheduler;
  #alive = true;

  /** A clock driven by `scheduler`. */
  constructor(scheduler: Scheduler) {
    this.#scheduler = scheduler;
  }

  /** Virtual milliseconds. */
  now(): number {
    return this.#scheduler.now;
  }

  /** Runs `fn` after `ms` virtual milliseconds, unless killed first. */
  setTimeout(fn: () => void, ms: number): number {
    return this.#scheduler.at(ms, () => {
      if (this.#alive) fn();
    });
  }

  /** Cancels a timer. */
  clearTimeout(handle: number): void {
    this.#scheduler.cancel(handle);
  }

  /** Stops every timer for good. */
  kill(): void {
    this.#alive = false;
  }
}
