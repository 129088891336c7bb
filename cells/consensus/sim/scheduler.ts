/**
 * A single-threaded discrete-event scheduler over virtual time: no real timers, so a run replays.
 *
 * @module
 */

interface Event {
  time: number;
  seq: number;
  fn: () => void;
}

/** Microtask turns granted after each event, so promise chains it started settle first. */
const SETTLE_TURNS = 24;

/** Runs callbacks in virtual-time order (ties in scheduling order). */
export class Scheduler {
  #heap: Event[] = [];
  #seq = 0;
  #now = 0;
  #cancelled = new Set<number>();
  /** Events run so far. */
  steps = 0;

  /** Virtual milliseconds since the start. */
  get now(): number {
    return this.#now;
  }

  /** Runs `fn` after `delay` virtual ms; returns a handle for {@linkcode Scheduler.cancel}. */
  at(delay: number, fn: () => void): number {
    const ev = { time: this.#now + Math.max(0, delay), seq: ++this.#seq, fn };
    this.#push(ev);
    return ev.seq;
  }

  /** Cancels a pending event. */
  cancel(handle: number): void {
    this.#cancelled.add(handle);
  }

  /** Runs events until virtual time `until` or until `stop()` returns true. */
  async run(until: number, stop: () => boolean = () => false): Promise<void> {
    while (this.#heap.length > 0 && !stop()) {
      const ev = this.#heap[0]!;
      if (ev.time > until) break;
      this.#pop();
      if (this.#cancelled.delete(ev.seq)) continue;
      this.#now = ev.time;
      this.steps++;
      ev.fn();
      for (let i = 0; i < SETTLE_TURNS; i++) await null;
    }
    this.#now = Math.max(this.#now, until);
  }

  #less(a: Event, b: Event): boolean {
    return a.time < b.time || (a.time === b.time && a.seq < b.seq);
  }

  #push(ev: Event): void {
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
