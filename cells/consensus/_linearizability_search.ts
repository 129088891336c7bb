/**
 * The model-agnostic search behind {@linkcode checkKv}: Wing and Gong's algorithm with Lowe's
 * memoization, over a model whose states are small integers. Internal to the consensus cell.
 *
 * @module
 */

/** One history of one partition, for {@linkcode searchLinearization}. */
export interface SearchInput {
  /** Call time of each operation, ascending (ids are indexes in call order). */
  calls: ArrayLike<number>;
  /** Return time of each operation; `Infinity` for one of unknown outcome. */
  returns: ArrayLike<number>;
  /** The model: the state after operation `id` in `state`, or -1 when its output is impossible. */
  step(state: number, id: number): number;
}

/** The deepest point the search reached, to explain a failure. */
export interface Deepest {
  /** How many operations were linearized there. */
  count: number;
  /** The model state there. */
  state: number;
  /** The last few operations linearized, oldest first. */
  last: number[];
  /** The operation whose return was reached while it could not be linearized. */
  blocked: number;
  /** A few operations concurrent with it, none of which could go next either. */
  candidates: number[];
}

/** What {@linkcode searchLinearization} found. */
export interface SearchResult {
  /** Whether a linearization exists, none does, or the deadline passed first. */
  verdict: "ok" | "violation" | "timeout";
  /** On violation or timeout, the deepest point reached (absent if none was). */
  deepest?: Deepest;
}

// A visited configuration: state, the known-outcome ops linearized (a run of full words from
// the start, then `words`) and the unknown-outcome ops linearized.
interface Config {
  state: number;
  low: number;
  words: Uint32Array;
  unknown: Uint32Array;
  failed: boolean;
}

/**
 * Looks for a linearization, giving up at `deadline` (a `performance.now()` value).
 *
 * Calls and returns form a doubly linked list sorted by time (a call before a return at the same
 * instant). Linearizing an operation lifts its two entries out; backtracking puts them back. A
 * configuration already explored is not explored again. Operations of unknown outcome (return
 * `Infinity`) are tried only after the known ones fail, and a configuration is also pruned when
 * one that differs only by having *fewer* of them linearized has already failed: an unknown op
 * left pending can always go last, so fewer linearized means at least as many options.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { searchLinearization } from "./_linearizability_search.ts";
 *
 * // A register: op 0 writes 1 during [0, 10]; op 1 reads 1 during [2, 3].
 * const result = searchLinearization({
 *   calls: [0, 2],
 *   returns: [10, 3],
 *   step: (state, id) => id === 0 ? 1 : state === 1 ? state : -1,
 * }, Infinity);
 * assert.equal(result.verdict, "ok");
 * ```
 */
export function searchLinearization(input: SearchInput, deadline: number): SearchResult {
  return new Search(input).run(deadline);
}

class Search {
  #input: SearchInput;
  #n: number;
  // Entries 0..2n-1: the call of op i is 2i, its return 2i+1; entry 2n is the list head.
  #next: Int32Array;
  #prev: Int32Array;
  #isUnknown: Uint8Array;
  #rank: Int32Array; // position among the ops of the same kind (known or unknown outcome)
  #known: Uint32Array;
  #unknown: Uint32Array;
  #low = 0; // first word of #known that is not all ones
  #high = 0; // bound on the last non-zero word of #known, plus one
  #zobrist: Int32Array;
  #hash = 0;
  #cache = new Map<number, Config[]>();
  #deepest: Deepest | undefined;

  constructor(input: SearchInput) {
    this.#input = input;
    const n = this.#n = input.calls.length;
    this.#next = new Int32Array(2 * n + 1).fill(-1);
    this.#prev = new Int32Array(2 * n + 1).fill(-1);
    this.#isUnknown = new Uint8Array(n);
    this.#rank = new Int32Array(n);
    this.#zobrist = new Int32Array(n);
    let known = 0;
    let unknown = 0;
    let seed = 0x2545f491;
    for (let i = 0; i < n; i++) {
      const isUnknown = input.returns[i] === Infinity;
      this.#isUnknown[i] = isUnknown ? 1 : 0;
      this.#rank[i] = isUnknown ? unknown++ : known++;
      seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
      this.#zobrist[i] = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d);
    }
    this.#known = new Uint32Array((known >> 5) + 1);
    this.#unknown = new Uint32Array((unknown >> 5) + 1);
    const order: number[] = [];
    for (let i = 0; i < 2 * n; i++) order.push(i);
    const time = (e: number) => (e & 1) === 0 ? input.calls[e >> 1]! : input.returns[e >> 1]!;
    order.sort((a, b) => time(a) - time(b) || (a & 1) - (b & 1) || a - b);
    let last = 2 * n;
    for (const e of order) {
      this.#next[last] = e;
      this.#prev[e] = last;
      last = e;
    }
  }

  // Each walk from the head has two phases: first it tries the calls of known outcome in list
  // order; on reaching a return it walks again from the head trying only the unknown-outcome
  // calls; only on reaching a return then does it backtrack. Putting off the ops that may never
  // have taken effect keeps the search near-linear when most of them did not.
  run(deadline: number): SearchResult {
    const next = this.#next;
    const isUnknown = this.#isUnknown;
    const head = 2 * this.#n;
    const stack: number[] = []; // pairs: op id, state before it
    const frames: Config[] = [];
    let state = 0;
    let entry = next[head]!;
    let deferred = 0; // 1 in the second phase
    let steps = 0;
    while (next[head] !== -1) {
      if ((++steps & 0x3ff) === 0 && performance.now() > deadline) {
        return { verdict: "timeout", deepest: this.#deepest };
      }
      if ((entry & 1) === 0) {
        const id = entry >> 1;
        if (isUnknown[id] !== deferred) {
          entry = next[entry]!;
          continue;
        }
        const after = this.#input.step(state, id);
        const config = after === -1 ? undefined : this.#visit(id, after);
        if (config !== undefined) {
          stack.push(id, state);
          frames.push(config);
          state = after;
          this.#lift(entry);
          entry = next[head]!;
          deferred = 0;
        } else {
          entry = next[entry]!;
        }
      } else if (deferred === 0) {
        deferred = 1;
        entry = next[head]!;
      } else {
        // A return reached: that operation had to be linearized already. Backtrack.
        if (stack.length / 2 > (this.#deepest?.count ?? -1)) this.#record(stack, state, entry);
        if (stack.length === 0) return { verdict: "violation", deepest: this.#deepest };
        frames.pop()!.failed = true;
        state = stack.pop()!;
        const id = stack.pop()!;
        this.#set(id, false);
        this.#unlift(2 * id);
        entry = next[2 * id]!;
        deferred = isUnknown[id]!;
      }
    }
    return { verdict: "ok" };
  }

  // Linearizes `id` into `state` and records the configuration, unless it (or one that
  // dominates it) was seen: then undoes it and returns undefined.
  #visit(id: number, state: number): Config | undefined {
    this.#set(id, true);
    const hash = (this.#hash ^ Math.imul(state + 1, 0x9e3779b1)) | 0;
    const bucket = this.#cache.get(hash);
    const words = this.#tail();
    if (bucket !== undefined) {
      for (const c of bucket) {
        if (c.state !== state || c.low !== this.#low || !sameWords(c.words, words)) continue;
        const subset = isSubset(c.unknown, this.#unknown);
        if (subset && (c.failed || sameWords(c.unknown, this.#unknown))) {
          this.#set(id, false);
          return undefined;
        }
      }
    }
    const config = { state, low: this.#low, words, unknown: this.#unknown.slice(), failed: false };
    if (bucket === undefined) this.#cache.set(hash, [config]);
    else bucket.push(config);
    return config;
  }

  #set(id: number, on: boolean): void {
    const r = this.#rank[id]!;
    const w = r >> 5;
    const bit = 1 << (r & 31);
    if (this.#isUnknown[id] === 1) {
      const bits = this.#unknown;
      bits[w] = on ? bits[w]! | bit : bits[w]! & ~bit;
      return;
    }
    const bits = this.#known;
    this.#hash ^= this.#zobrist[id]!;
    if (on) {
      bits[w] = bits[w]! | bit;
      if (w >= this.#high) this.#high = w + 1;
      while (this.#low < bits.length && bits[this.#low] === 0xffffffff) this.#low++;
    } else {
      bits[w] = bits[w]! & ~bit;
      if (w < this.#low) this.#low = w;
    }
  }

  // Ops are ranked in call order, so the linearized known ops are a run of full words and a
  // short tail: the words after the run, trimmed of trailing zeros.
  #tail(): Uint32Array {
    const bits = this.#known;
    while (this.#high > this.#low && bits[this.#high - 1] === 0) this.#high--;
    return bits.slice(this.#low, Math.max(this.#low, this.#high));
  }

  #lift(call: number): void {
    this.#remove(call);
    this.#remove(call + 1);
  }

  #unlift(call: number): void {
    this.#insert(call + 1);
    this.#insert(call);
  }

  #remove(e: number): void {
    const next = this.#next;
    const prev = this.#prev;
    next[prev[e]!] = next[e]!;
    if (next[e] !== -1) prev[next[e]!] = prev[e]!;
  }

  #insert(e: number): void {
    const next = this.#next;
    const prev = this.#prev;
    next[prev[e]!] = e;
    if (next[e] !== -1) prev[next[e]!] = e;
  }

  #record(stack: number[], state: number, blocked: number): void {
    const last: number[] = [];
    for (let i = Math.max(0, stack.length - 6); i < stack.length; i += 2) last.push(stack[i]!);
    const candidates: number[] = [];
    for (let e = this.#next[2 * this.#n]!; e !== -1 && e !== blocked; e = this.#next[e]!) {
      if ((e & 1) === 0 && e !== blocked - 1 && candidates.length < 5) candidates.push(e >> 1);
    }
    this.#deepest = { count: stack.length / 2, state, last, candidates, blocked: blocked >> 1 };
  }
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isSubset(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if ((a[i]! & ~b[i]!) !== 0) return false;
  return true;
}
