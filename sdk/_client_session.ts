// One client connection and the calls in flight on it.
import { CellError, codeFromNumber } from "./errors.ts";
import type { PayloadDecoder } from "./_payload_codec.ts";
import type { Frame, HelloInfo } from "./protocol.ts";
import { FrameKind, PROTOCOL_VERSION } from "./protocol.ts";
import type { Connection } from "./transport.ts";
import type { CallOptions } from "./client.ts";

/** What a {@linkcode Pending} call consults when it fails: may retry it elsewhere. */
export interface Recovery {
  recover(error: CellError, pending: Pending): Promise<unknown>;
}

/** Told of the round trip of each answered call (seconds), for the `nearest` balance. */
export interface RttSink {
  recordRtt(seconds: number): void;
}

/** A call (or PING) waiting for its answer, and the promise its caller holds. */
export class Pending {
  id = 0;
  /**
   * When the caller stops waiting (ms since the epoch), or 0 until the client's next clock tick
   * sets it from {@linkcode Pending.timeoutMs} (see `ClientCore`).
   */
  deadline: number;
  /** The call's timeout (ms), kept while {@linkcode Pending.deadline} is 0. */
  timeoutMs = 0;
  readonly label: string;
  readonly promise: Promise<unknown>;
  /** The request, for a retry by {@linkcode Pending.recovery}. */
  readonly payload: unknown;
  readonly options: CallOptions;
  readonly #session: Session;
  readonly recovery: Recovery | undefined;
  /** Reads the answer: the response protein's compiled decoder, when the client knows it. */
  decode: PayloadDecoder | undefined;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #rtt: RttSink | undefined;
  #sentAt = 0;

  constructor(
    session: Session,
    deadline: number,
    label: string,
    payload: unknown,
    options: CallOptions,
    recovery: Recovery | undefined,
  ) {
    this.#session = session;
    this.deadline = deadline;
    this.label = label;
    this.payload = payload;
    this.options = options;
    this.recovery = recovery;
    this.decode = undefined;
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** The session the call was sent on. */
  get session(): Session {
    return this.#session;
  }

  /** Cancels the call when `signal` aborts. */
  watch(signal: AbortSignal): void {
    this.#signal = signal;
    this.#onAbort = () =>
      this.giveUp(
        new CellError("CANCELLED", `Call '${this.label}' was cancelled`, { cause: signal.reason }),
      );
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Tells `sink` how long the call took to be answered, from now, if it succeeds. */
  measure(sink: RttSink | undefined): void {
    this.#rtt = sink;
    this.#sentAt = performance.now();
  }

  /** Settles with the answer (the session has already forgotten the call). */
  resolve(value: unknown): void {
    this.#unwatch();
    if (this.#rtt !== undefined) this.#rtt.recordRtt((performance.now() - this.#sentAt) / 1000);
    this.#resolve(value);
  }

  /** Settles with a failure (the session has already forgotten the call), or retries. */
  reject(error: CellError): void {
    this.#unwatch();
    if (this.recovery === undefined) this.#reject(error);
    else this.recovery.recover(error, this).then(this.#resolve, this.#reject);
  }

  /** The caller stops waiting: forget the call, tell the server, fail with `error`. */
  giveUp(error: CellError): void {
    if (this.#session.pending.get(this.id) !== this) return;
    this.#session.pending.delete(this.id);
    try {
      this.#session.conn.send({ kind: FrameKind.CANCEL, id: this.id });
    } catch {
      // The connection is gone: nothing to cancel.
    }
    this.reject(error);
    this.#session.maybeDone();
  }

  #unwatch(): void {
    if (this.#onAbort) this.#signal!.removeEventListener("abort", this.#onAbort);
  }
}

/** The state of a connection's call ids: see {@linkcode allocateId}. */
export interface IdCounter {
  /** The next id to try, in [1, 2^32 - 1]. */
  next: number;
  /** True once the counter went past 2^32 - 1 and started again at 1. */
  wrapped: boolean;
}

/**
 * A call id in [1, 2^32 - 1] that no call in `inUse` holds: the counter's next, or after it
 * once the counter has wrapped (before that every id is fresh, and no lookup is made).
 */
export function allocateId(ids: IdCounter, inUse: { has(id: number): boolean }): number {
  let id = ids.next;
  if (ids.wrapped) { while (inUse.has(id)) id = id >= 0xffffffff ? 1 : id + 1; }
  if (id >= 0xffffffff) {
    ids.next = 1;
    ids.wrapped = true;
  } else {
    ids.next = id + 1;
  }
  return id;
}

/** Marks failures the server provably never processed: any call may be retried after them. */
export const UNPROCESSED: WeakSet<CellError> = new WeakSet<CellError>();

/** Marks `error` as one the server never processed, and returns it. */
export function unprocessed(error: CellError): CellError {
  UNPROCESSED.add(error);
  return error;
}

/**
 * The calls in flight on a session, by id: a slot per `id & mask` (ids are handed out in
 * sequence, so calls in flight rarely share a slot), and a map for those that do. Cheaper than
 * a `Map` on the hot path (no hashing, no table churn as calls come and go).
 */
export class CallTable {
  #slots: (Pending | undefined)[] = new Array(256).fill(undefined);
  #mask = 255;
  #overflow: Map<number, Pending> | undefined;
  #size = 0;

  /** Calls in the table. */
  get size(): number {
    return this.#size;
  }

  get(id: number): Pending | undefined {
    const p = this.#slots[id & this.#mask];
    if (p !== undefined && p.id === id) return p;
    return this.#overflow?.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  /** Adds `pending` under its id (`pending.id`). */
  set(id: number, pending: Pending): void {
    if (this.#overflow !== undefined && this.#overflow.has(id)) {
      this.#overflow.set(id, pending);
      return;
    }
    const i = id & this.#mask;
    const current = this.#slots[i];
    if (current === undefined) {
      this.#slots[i] = pending;
      if (++this.#size * 2 > this.#slots.length) this.#grow();
    } else if (current.id === id) {
      this.#slots[i] = pending;
    } else {
      (this.#overflow ??= new Map()).set(id, pending);
      if (++this.#size * 2 > this.#slots.length) this.#grow();
    }
  }

  delete(id: number): boolean {
    const i = id & this.#mask;
    const p = this.#slots[i];
    if (p !== undefined && p.id === id) {
      this.#slots[i] = undefined;
      this.#size--;
      return true;
    }
    if (this.#overflow?.delete(id)) {
      this.#size--;
      return true;
    }
    return false;
  }

  /** The calls, in id order (a snapshot: the table may change while it is walked). */
  values(): Pending[] {
    const out: Pending[] = [];
    for (const p of this.#slots) if (p !== undefined) out.push(p);
    if (this.#overflow) { for (const p of this.#overflow.values()) out.push(p); }
    return out.sort((a, b) => a.id - b.id);
  }

  /** `[id, call]` pairs, as {@linkcode CallTable.values}. */
  [Symbol.iterator](): IterableIterator<[number, Pending]> {
    return this.values().map((p): [number, Pending] => [p.id, p])[Symbol.iterator]();
  }

  clear(): void {
    this.#slots.fill(undefined);
    this.#overflow = undefined;
    this.#size = 0;
  }

  #grow(): void {
    const all = this.values();
    this.#slots = new Array(this.#slots.length * 2).fill(undefined);
    this.#mask = this.#slots.length - 1;
    this.#overflow = undefined;
    this.#size = 0;
    for (const p of all) this.set(p.id, p);
  }
}

/** One connection and the calls in flight on it. */
export class Session {
  readonly conn: Connection;
  readonly pending: CallTable = new CallTable();
  hello: HelloInfo | undefined;
  draining = false;
  readonly #ids: IdCounter = { next: 1, wrapped: false };
  /**
   * The call whose answer is being decoded (found to pick its payload decoder), so that
   * delivering that answer right after needs no second lookup.
   */
  #answering: Pending | undefined;
  #greeted: { resolve(): void; reject(e: CellError): void } | undefined;
  readonly greeted: Promise<void>;
  readonly #onGone: (s: Session, closed: boolean) => void;

  constructor(
    conn: Connection,
    info: HelloInfo,
    onGone: (s: Session, closed: boolean) => void,
  ) {
    this.conn = conn;
    this.#onGone = onGone;
    this.greeted = new Promise((resolve, reject) => this.#greeted = { resolve, reject });
    this.greeted.catch(() => {});
    conn.start({
      onFrame: (f) => this.#onFrame(f),
      onMalformed: (m) => {
        this.#answering = undefined;
        this.#failAll(m.error, true);
      },
      onClose: (reason) => this.#onClose(reason),
      decoders: {
        request: () => undefined,
        response: (id) => (this.#answering = this.pending.get(id))?.decode,
      },
    });
    conn.send({ kind: FrameKind.HELLO, version: PROTOCOL_VERSION, info });
  }

  nextId(): number {
    return allocateId(this.#ids, this.pending);
  }

  #onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.RESPONSE: {
        const answering = this.#answering;
        this.#answering = undefined;
        const p = answering !== undefined && answering.id === frame.id
          ? answering
          : this.pending.get(frame.id);
        if (p) {
          this.pending.delete(frame.id);
          p.resolve(frame.payload);
          this.maybeDone();
        }
        return;
      }
      case FrameKind.ERROR: {
        const error = new CellError(
          codeFromNumber(frame.code),
          frame.message,
          frame.details === undefined ? {} : { details: frame.details },
        );
        if (frame.id === 0) return this.#failAll(error, true);
        const p = this.pending.get(frame.id);
        if (p) {
          this.pending.delete(frame.id);
          p.reject(error);
          this.maybeDone();
        }
        return;
      }
      case FrameKind.HELLO:
        this.hello = frame.info;
        if (typeof frame.info.max_frame === "number" && frame.info.max_frame > 0) {
          this.conn.peerMaxFrame = frame.info.max_frame;
        }
        return this.#greeted?.resolve();
      case FrameKind.PONG: {
        const p = this.pending.get(frame.id);
        if (p) {
          this.pending.delete(frame.id);
          p.resolve(undefined);
          this.maybeDone();
        }
        return;
      }
      case FrameKind.GOAWAY: {
        this.draining = true;
        this.#onGone(this, false);
        for (const [id, p] of this.pending) {
          if (id <= frame.lastId) continue;
          this.pending.delete(id);
          p.reject(
            unprocessed(new CellError("UNAVAILABLE", `${frame.message}; call not processed`)),
          );
        }
        return this.maybeDone();
      }
      default:
        return; // PING, REQUEST, CANCEL: a server does not send these.
    }
  }

  /** Closes a draining connection once its last call is answered. */
  maybeDone(): void {
    if (this.draining && this.pending.size === 0) this.conn.close();
  }

  #failAll(error: CellError, close: boolean): void {
    this.#greeted?.reject(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    if (close) this.conn.close(error);
  }

  #onClose(reason: CellError | undefined): void {
    this.#onGone(this, true);
    this.#failAll(
      reason ?? new CellError("UNAVAILABLE", "Connection closed by the server"),
      false,
    );
  }
}

/** Waits for the server's HELLO on `session`, failing with `UNAVAILABLE` after `timeoutMs`. */
export async function greeted(session: Session, timeoutMs: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) =>
    timer = setTimeout(() =>
      reject(
        new CellError("UNAVAILABLE", `${what} did not answer HELLO within ${timeoutMs} ms`),
      ), timeoutMs)
  );
  try {
    await Promise.race([session.greeted, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
