/**
 * A linearizability checker for the key-value model of the consensus cell.
 *
 * The search is Wing and Gong's, with Lowe's memoization, as implemented by Porcupine
 * (anishathalye/porcupine) and Knossos:
 *
 * - **P-compositionality.** A history is linearizable iff its restriction to every key is, so the
 *   history is split per key and each part is checked on its own.
 * - **Entry list.** Calls and returns are sorted by time (a call before a return at the same
 *   instant, so touching intervals count as concurrent) into a doubly linked list. Linearizing an
 *   operation lifts its call and return out of the list; backtracking puts them back.
 * - **Cache.** A configuration is the set of linearized operations plus the model state; one that
 *   was already explored is never explored again.
 * - **Unknown outcomes.** An operation whose client never learned the result has
 *   `return: Infinity` and no `output`. It may take effect at any point after its call, or never.
 *
 * @module
 */
import type { KvCommand } from "./types.ts";
import { type Deepest, searchLinearization } from "./_linearizability_search.ts";

/** What a client asked: a read, or a key-value command. Unknown extra fields are ignored. */
export type KvInput = { op: "get"; key: string } | KvCommand;

/**
 * What a client was told. A field left out is not checked: `value` for a `get`, `previous` for
 * any write, `ok` for a compare-and-set.
 */
export interface KvOutput {
  /** A `get`'s result: the value, or `null` when the key is absent. */
  value?: string | null;
  /** A compare-and-set's result: whether it swapped. */
  ok?: boolean;
  /** A write's report of the value before it (`null` when absent). */
  previous?: string | null;
}

/** One operation of a history, with the times its client invoked it and saw its result. */
export interface Operation {
  /** The client (process) that invoked it; used only in explanations. */
  client: number;
  /** What was asked. */
  input: KvInput;
  /** When it was invoked. */
  call: number;
  /** When its result arrived; `Infinity` when the outcome is unknown. */
  return: number;
  /** Its result; `undefined` when the outcome is unknown. */
  output?: KvOutput;
}

/** What {@linkcode checkKv} found. */
export interface CheckResult {
  /** True when the history is linearizable. */
  ok: boolean;
  /** On failure or timeout: the first key whose history could not be linearized (or checked). */
  key?: string;
  /** On failure or timeout: which operations could not be placed, and why. */
  explanation?: string;
  /**
   * True when the search ran out of time: the result is inconclusive, neither a pass nor a
   * proven violation. `ok` is then false.
   */
  timedOut?: boolean;
}

/** Options of {@linkcode checkKv}. */
export interface CheckOptions {
  /** Give up after this long, over all keys, and report `timedOut`. @default {Infinity} */
  timeoutMs?: number;
}

const GET = 0;
const PUT = 1;
const DELETE = 2;
const CAS = 3;
const ANY = -1;

// One operation of one key, with values interned to small integers (0 is "absent").
interface Prepared {
  op: Operation;
  kind: number;
  value: number;
  expected: number;
  outValue: number;
  outPrevious: number;
  outOk: number;
}

/**
 * Checks that a key-value history is linearizable: that every operation can be given a point
 * between its call and its return such that, taken in that order, the results are those of a
 * single sequential map.
 *
 * Each key starts absent. Operations with `return: Infinity` and no output may or may not have
 * taken effect. On `timedOut` the answer is inconclusive: treat it as neither pass nor failure
 * (histories with many unknown-outcome writes on one key are the expensive case).
 *
 * @example Two reads that disagree with the order of their writes
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKv } from "./linearizability.ts";
 *
 * const ok = checkKv([
 *   { client: 1, input: { op: "put", key: "x", value: "a" }, call: 0, return: 10, output: {} },
 *   { client: 2, input: { op: "get", key: "x" }, call: 5, return: 8, output: { value: null } },
 *   { client: 2, input: { op: "get", key: "x" }, call: 11, return: 12, output: { value: "a" } },
 * ]);
 * assert.equal(ok.ok, true);
 *
 * const stale = checkKv([
 *   { client: 1, input: { op: "put", key: "x", value: "a" }, call: 0, return: 10, output: {} },
 *   { client: 2, input: { op: "get", key: "x" }, call: 11, return: 12, output: { value: null } },
 * ]);
 * assert.equal(stale.ok, false);
 * assert.equal(stale.key, "x");
 * ```
 */
export function checkKv(history: Operation[], options: CheckOptions = {}): CheckResult {
  const timeoutMs = options.timeoutMs ?? Infinity;
  if (!(timeoutMs >= 0)) {
    throw new RangeError(`Cannot check: timeoutMs must be >= 0, got ${timeoutMs}`);
  }
  const deadline = performance.now() + timeoutMs;
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    validate(op);
    const ops = byKey.get(op.input.key);
    if (ops === undefined) byKey.set(op.input.key, [op]);
    else ops.push(op);
  }
  let timedOut: CheckResult | undefined;
  for (const [key, ops] of byKey) {
    const result = checkKey(key, ops, deadline);
    if (result.timedOut) timedOut ??= result;
    else if (!result.ok) return result;
  }
  return timedOut ?? { ok: true };
}

function validate(op: Operation): void {
  const { call, input } = op;
  if (!Number.isFinite(call) || Number.isNaN(op.return) || op.return < call) {
    throw new RangeError(
      `Cannot check operation ${describe(op)}: call must be finite and return >= call`,
    );
  }
  if (typeof input?.key !== "string") {
    throw new TypeError(`Cannot check operation ${JSON.stringify(op)}: input.key must be a string`);
  }
  if (!["get", "put", "delete", "cas"].includes(input.op)) {
    throw new TypeError(
      `Cannot check operation with op "${input.op}": use get, put, delete or cas`,
    );
  }
}

function prepare(ops: Operation[]): { prepared: Prepared[]; names: string[] } {
  const ids = new Map<string, number>();
  const names = ["absent"];
  const intern = (v: string | null | undefined): number => {
    if (v === undefined) return ANY;
    if (v === null) return 0;
    let id = ids.get(v);
    if (id === undefined) {
      ids.set(v, id = names.length);
      names.push(JSON.stringify(v));
    }
    return id;
  };
  const prepared: Prepared[] = [];
  for (const op of ops) {
    const input = op.input;
    const out = op.output;
    const kind = input.op === "get"
      ? GET
      : input.op === "put"
      ? PUT
      : input.op === "delete"
      ? DELETE
      : CAS;
    const outValue = intern(out?.value);
    // A read with nothing to check neither constrains nor changes the state: skip it.
    if (kind === GET && outValue === ANY) continue;
    prepared.push({
      op,
      kind,
      value: input.op === "put" || input.op === "cas" ? intern(input.value) : 0,
      expected: input.op === "cas" ? intern(input.expected) : 0,
      outValue,
      outPrevious: intern(out?.previous),
      outOk: out?.ok === undefined ? ANY : out.ok ? 1 : 0,
    });
  }
  prepared.sort((a, b) => a.op.call - b.op.call);
  return { prepared, names };
}

// The model: returns the new state, or -1 when `p`'s output is impossible in `state`.
function step(state: number, p: Prepared): number {
  switch (p.kind) {
    case GET:
      return p.outValue === ANY || p.outValue === state ? state : -1;
    case PUT:
      return p.outPrevious === ANY || p.outPrevious === state ? p.value : -1;
    case DELETE:
      return p.outPrevious === ANY || p.outPrevious === state ? 0 : -1;
    default: {
      const swapped = state === p.expected;
      if (p.outOk !== ANY && p.outOk !== (swapped ? 1 : 0)) return -1;
      if (p.outPrevious !== ANY && p.outPrevious !== state) return -1;
      return swapped ? p.value : state;
    }
  }
}

// Dropping unknown-outcome ops can only make a history harder to linearize (a dropped one may
// as well have never taken effect), so cheap passes without them come first: with none, then
// with those whose written value someone observed; only then the complete search.
function checkKey(key: string, ops: Operation[], deadline: number): CheckResult {
  const { prepared, names } = prepare(ops);
  const observed = new Set<number>();
  for (const p of prepared) {
    observed.add(p.outValue).add(p.outPrevious);
    if (p.kind === CAS && p.outOk === 1) observed.add(p.expected);
  }
  const known = prepared.filter((p) => p.op.return !== Infinity);
  const seen = prepared.filter((p) => p.op.return !== Infinity || observed.has(p.value));
  const passes = [known, seen, prepared].filter((pass, i, all) =>
    i === all.length - 1 || pass.length < all[i + 1]!.length
  );
  for (const pass of passes) {
    const { verdict, deepest } = searchLinearization({
      calls: pass.map((p) => p.op.call),
      returns: pass.map((p) => p.op.return),
      step: (state, id) => step(state, pass[id]!),
    }, deadline);
    if (verdict === "ok") return { ok: true };
    if (pass !== prepared && verdict === "violation") continue;
    const explanation = explain(key, pass, names, deepest);
    if (verdict === "timeout") {
      return { ok: false, key, timedOut: true, explanation: `Timed out: ${explanation}` };
    }
    return { ok: false, key, explanation };
  }
  throw new Error("unreachable");
}

function explain(key: string, ops: Prepared[], names: string[], deepest?: Deepest): string {
  if (deepest === undefined) return `key "${key}": the search stopped before any backtracking`;
  const { count, state, last, candidates, blocked } = deepest;
  const list = (ids: number[]) => ids.map((id) => describe(ops[id]!.op)).join(", ");
  const lines = [
    `key "${key}": the longest linearizable prefix places ${count} of ${ops.length} operations;`,
    count === 0
      ? `from the start (value ${names[state]}),`
      : `after …${list(last)} the value is ${names[state]},`,
    `and ${describe(ops[blocked]!.op)} must take effect before it returns, but cannot`,
  ];
  if (candidates.length > 0) {
    lines.push(`(nor can any concurrent operation go first: ${list(candidates)})`);
  }
  return lines.join(" ");
}

function describe(op: Operation): string {
  const i = op.input;
  const what = i.op === "get"
    ? `get(${JSON.stringify(i.key)})`
    : i.op === "put"
    ? `put(${JSON.stringify(i.key)}, ${JSON.stringify(i.value)})`
    : i.op === "delete"
    ? `delete(${JSON.stringify(i.key)})`
    : `cas(${JSON.stringify(i.key)}, ${JSON.stringify(i.expected)} → ${JSON.stringify(i.value)})`;
  const out = op.output === undefined ? "unknown" : JSON.stringify(op.output);
  return `client ${op.client} ${what} → ${out} [${op.call}, ${op.return}]`;
}
