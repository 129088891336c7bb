// One timer armed for the earliest of many deadlines, instead of one timer per call: Deno's
// setTimeout + clearTimeout costs ~2.5 µs, more than the rest of a local call. With the usual
// uniform timeouts each new deadline is later than the armed one, so nothing is re-armed; the
// timer fires at most once per timeout period and the sweep finds what really expired.

/** Calls `sweep(now)` when a watched deadline may have passed; it returns the next deadline. */
export class DeadlineTimer {
  readonly #sweep: (now: number) => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Infinity;

  constructor(sweep: (now: number) => number) {
    this.#sweep = sweep;
  }

  /** Makes sure the sweep runs by `deadline` (ms since the epoch). */
  watch(deadline: number): void {
    if (deadline < this.#armedAt) this.#arm(deadline);
  }

  /** Disarms the timer. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Infinity;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()));
    // Deadlines alone must not keep a process alive.
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedAt = Infinity;
    const next = this.#sweep(Date.now());
    if (next !== Infinity) this.#arm(next);
  }
}
