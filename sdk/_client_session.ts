// One client connection and the calls in flight on it.
import { CellError, codeFromNumber } from "./errors.ts";
import type { Frame, HelloInfo } from "./protocol.ts";
import { FrameKind, PROTOCOL_VERSION } from "./protocol.ts";
import type { Connection } from "./transport.ts";

/** A call (or PING) waiting for its answer. */
export class Pending {
  readonly id: number;
  readonly deadline: number;
  readonly label: string;
  readonly #session: Session;
  readonly #resolve: (value: unknown) => void;
  readonly #reject: (error: CellError) => void;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;

  constructor(
    session: Session,
    id: number,
    deadline: number,
    label: string,
    resolve: (value: unknown) => void,
    reject: (error: CellError) => void,
  ) {
    this.#session = session;
    this.id = id;
    this.deadline = deadline;
    this.label = label;
    this.#resolve = resolve;
    this.#reject = reject;
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

  /** Settles with the answer (the session has already forgotten the call). */
  resolve(value: unknown): void {
    this.#unwatch();
    this.#resolve(value);
  }

  /** Settles with a failure (the session has already forgotten the call). */
  reject(error: CellError): void {
    this.#unwatch();
    this.#reject(error);
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

/** Marks failures the server provably never processed: any call may be retried after them. */
export const UNPROCESSED: WeakSet<CellError> = new WeakSet<CellError>();

/** Marks `error` as one the server never processed, and returns it. */
export function unprocessed(error: CellError): CellError {
  UNPROCESSED.add(error);
  return error;
}

/** One connection and the calls in flight on it. */
export class Session {
  readonly conn: Connection;
  readonly pending = new Map<number, Pending>();
  hello: HelloInfo | undefined;
  draining = false;
  #nextId = 1;
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
      onMalformed: (m) => this.#failAll(m.error, true),
      onClose: (reason) => this.#onClose(reason),
    });
    conn.send({ kind: FrameKind.HELLO, version: PROTOCOL_VERSION, info });
  }

  nextId(): number {
    let id = this.#nextId;
    while (this.pending.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  #onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.RESPONSE: {
        const p = this.pending.get(frame.id);
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
