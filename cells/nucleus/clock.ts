/**
 * Time as the registry sees it: {@linkcode Clock}, with {@linkcode systemClock} for real use and
 * {@linkcode ManualClock} for tests that must control expiry and blocking queries.
 *
 * @module
 */

/** What the registry needs of time: the current time and one-shot timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(callback: () => void, ms: number): number;
  /** Cancels a timer made by `setTimeout`; unknown handles are ignored. */
  clearTimeout(handle: number): void;
}

/**
 * The real clock: `Date.now()` and the global timers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { systemClock } from "@cell/nucleus";
 * assert.ok(Math.abs(systemClock.now() - Date.now()) < 1000);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  // Number(): with Node's types in scope, setTimeout is typed to return an object.
  setTimeout: (callback, ms) => Number(setTimeout(callback, ms)),
  clearTimeout: (handle) => clearTimeout(handle),
};

/**
 * A clock that only moves when told to, for tests: `tick(ms)` advances it and runs the timers
 * that fall due, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManualClock } from "@cell/nucleus";
 *
 * const clock = new ManualClock(1_000);
 * let fired = 0;
 * clock.setTimeout(() => fired++, 500);
 * clock.tick(499);
 * assert.equal(fired, 0);
 * clock.tick(1);
 * assert.equal(fired, 1);
 * assert.equal(clock.now(), 1_500);
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  /** Starts the clock at `start` (ms since the epoch). */
  constructor(start = 0) {
    this.#now = start;
  }

  /** The clock's current time. */
  now(): number {
    return this.#now;
  }

  /** Schedules `callback` at `now() + ms`. */
  setTimeout(callback: () => void, ms: number): number {
    const handle = this.#next++;
    this.#timers.set(handle, { at: this.#now + Math.max(0, ms), callback });
    return handle;
  }

  /** Cancels a timer. */
  clearTimeout(handle: number): void {
    this.#timers.delete(handle);
  }

  /** Timers not yet run. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Advances the clock by `ms`, running each timer that falls due at its own time. */
  tick(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (due === undefined || entry[1].at < due[1].at)) due = entry;
      }
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].callback();
    }
    this.#now = end;
  }
}
