// One server connection: the calls in flight on it, from HELLO to GOAWAY.
import type { PayloadDecoder, PayloadEncoder } from "./_payload_codec.ts";
import { CellError } from "./errors.ts";
import type { CallContext, PeerInfo } from "./context.ts";
import type { Frame, HelloInfo, MalformedFrame, RequestFrame } from "./protocol.ts";
import { FrameKind, PROTOCOL_VERSION } from "./protocol.ts";
import type { Method } from "./service.ts";
import type { CellSchema } from "./schema.ts";
import { withDocs } from "./tsdoc.ts";
import type { Connection } from "./transport.ts";
import { AGENT, SCHEMA_METHOD } from "./_names.ts";
import type { DeadlineTimer } from "./_deadlines.ts";

/** What a connection's session needs of the server it belongs to. */
export interface SessionHost {
  readonly name: string;
  readonly schema: CellSchema;
  readonly maxFrame: number;
  readonly maxConcurrentCalls: number;
  /** The methods, quoted and comma-separated, for error messages. */
  readonly methodList: string;
  readonly deadlines: DeadlineTimer;
  dispatch(method: string): Dispatch | undefined;
  onError(error: unknown, method: string): void;
  forget(session: Session): void;
}

class ServerCall implements CallContext {
  readonly cell: string;
  readonly method: string;
  readonly peer: PeerInfo;
  readonly metadata: Readonly<Record<string, string>>;
  #controller: AbortController | undefined;
  #reason: CellError | undefined;
  #timeoutMs: number;
  #deadline = 0;
  done = false;

  constructor(cell: string, frame: RequestFrame, peer: PeerInfo) {
    this.cell = cell;
    this.method = frame.method;
    this.#timeoutMs = frame.timeoutMs;
    this.peer = peer;
    this.metadata = frame.metadata ?? EMPTY;
  }

  /**
   * Read the clock when first asked (by the handler, or when the handler goes asynchronous and
   * the call is watched), not per call: a clock read costs ~50 ns here, and a synchronous
   * handler that never asks needs none. The deadline bounds work the caller still waits for;
   * the caller's own deadline, counted from before it sent, is the one that fails the call.
   */
  get deadline(): number {
    if (this.#deadline === 0) {
      this.#deadline = this.#timeoutMs > 0 ? Date.now() + this.#timeoutMs : Infinity;
    }
    return this.#deadline;
  }

  // Most handlers never look at the signal: create it on first use.
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: CellError): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }

  finish(): void {
    this.done = true;
  }
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** A method and its handler. */
export interface Dispatch {
  /** The method's name. */
  name: string;
  method: Method;
  handler: (request: never, context: CallContext) => unknown;
  /** Writes the handler's answers: the response protein's compiled encoder. */
  encode: PayloadEncoder;
  /** Reads the requests: the request protein's compiled decoder. */
  decode: PayloadDecoder;
}

export class Session {
  readonly #server: SessionHost;
  readonly #conn: Connection;
  readonly #calls = new Map<number, ServerCall>();
  #peer: PeerInfo;
  #greeted = false;
  #lastId = 0;
  /**
   * The method of the request being decoded (found to pick its payload decoder), so that
   * dispatching that request right after needs no second lookup.
   */
  #decoding: Dispatch | undefined;
  #draining = false;
  #drained: (() => void) | undefined;

  constructor(server: SessionHost, conn: Connection) {
    this.#server = server;
    this.#conn = conn;
    this.#peer = { transport: conn.transport };
    conn.start({
      onFrame: (frame) => this.#onFrame(frame),
      onMalformed: (m) => {
        this.#decoding = undefined;
        this.#onMalformed(m);
      },
      onClose: () => this.#onClose(),
      decoders: {
        request: (method) => (this.#decoding = server.dispatch(method))?.decode,
        response: () => undefined,
      },
    });
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  /** Sends GOAWAY; resolves when no call is in flight any more. */
  goAway(): Promise<void> {
    this.#draining = true;
    this.#trySend({
      kind: FrameKind.GOAWAY,
      lastId: this.#lastId,
      message: `Cell '${this.#server.name}' is shutting down`,
    });
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained = resolve);
  }

  /** Fails the calls whose deadline passed; returns the earliest deadline still ahead. */
  sweep(now: number): number {
    let next = Infinity;
    for (const [id, call] of this.#calls) {
      if (call.deadline <= now) {
        const error = new CellError(
          "DEADLINE_EXCEEDED",
          `The caller's deadline passed before '${call.method}' finished`,
        );
        call.abort(error);
        call.finish();
        this.#forget(id);
        this.#sendError(id, error);
      } else if (call.deadline < next) {
        next = call.deadline;
      }
    }
    return next;
  }

  /** Cancels what is still running and closes the connection. */
  terminate(): void {
    const reason = new CellError(
      "UNAVAILABLE",
      `Cell '${this.#server.name}' shut down before the call finished: retry elsewhere`,
    );
    for (const [id, call] of this.#calls) {
      call.abort(reason);
      call.finish();
      this.#sendError(id, reason);
    }
    this.#calls.clear();
    this.#conn.close();
  }

  #onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.REQUEST:
        return this.#onRequest(frame);
      case FrameKind.HELLO:
        return this.#onHello(frame.version, frame.info);
      case FrameKind.CANCEL: {
        const call = this.#calls.get(frame.id);
        if (call) {
          call.abort(new CellError("CANCELLED", "The caller cancelled the call"));
          call.finish();
          this.#forget(frame.id);
        }
        return;
      }
      case FrameKind.PING:
        return this.#trySend({ kind: FrameKind.PONG, id: frame.id });
      default:
        return; // RESPONSE, ERROR, PONG and GOAWAY mean nothing from a client.
    }
  }

  #onHello(version: number, info: HelloInfo): void {
    if (this.#greeted) return; // HELLO is said once; a repeat changes nothing.
    if (version !== PROTOCOL_VERSION) {
      this.#sendError(
        0,
        new CellError(
          "FAILED_PRECONDITION",
          `Protocol version ${version} is not supported; this cell speaks version ` +
            `${PROTOCOL_VERSION}: upgrade the client`,
        ),
      );
      this.#conn.close();
      return;
    }
    this.#greeted = true;
    if (typeof info.max_frame === "number" && info.max_frame > 0) {
      this.#conn.peerMaxFrame = info.max_frame;
    }
    this.#peer = {
      transport: this.#conn.transport,
      ...(typeof info.peer === "string" ? { id: info.peer } : {}),
      ...(typeof info.agent === "string" ? { agent: info.agent } : {}),
    };
    this.#trySend({
      kind: FrameKind.HELLO,
      version: PROTOCOL_VERSION,
      info: {
        cell: this.#server.name,
        schema_hash: this.#server.schema.hash,
        max_frame: this.#server.maxFrame,
        agent: AGENT,
      },
    });
  }

  #onRequest(frame: RequestFrame): void {
    const id = frame.id;
    if (id > this.#lastId) this.#lastId = id;
    if (!this.#greeted) {
      return this.#sendError(
        id,
        new CellError("FAILED_PRECONDITION", "The first frame must be HELLO: see docs/protocol.md"),
      );
    }
    if (this.#draining) {
      return this.#sendError(
        id,
        new CellError(
          "UNAVAILABLE",
          `Cell '${this.#server.name}' is shutting down: retry on another instance`,
        ),
      );
    }
    if (this.#calls.size > 0 && this.#calls.has(id)) {
      return this.#sendError(
        id,
        new CellError("INVALID_ARGUMENT", `Call id ${id} is already in flight: use a fresh id`),
      );
    }
    if (this.#calls.size >= this.#server.maxConcurrentCalls) {
      return this.#sendError(
        id,
        new CellError(
          "RESOURCE_EXHAUSTED",
          `Too many calls in flight on one connection (limit ${this.#server.maxConcurrentCalls}): ` +
            "wait for some to finish",
        ),
      );
    }
    const decoding = this.#decoding;
    this.#decoding = undefined;
    const dispatch = decoding !== undefined && decoding.name === frame.method
      ? decoding
      : this.#server.dispatch(frame.method);
    if (!dispatch) {
      if (frame.method === SCHEMA_METHOD) return void this.#serveSchema(id);
      return this.#sendError(
        id,
        new CellError(
          "UNIMPLEMENTED",
          `Cell '${this.#server.name}' has no method '${frame.method}'; it has ` +
            `${this.#server.methodList}: see 'cell schema ${this.#server.name}'`,
        ),
      );
    }
    const request = dispatch.method.request;
    if (!request.check(frame.payload)) {
      try {
        request.validate(frame.payload);
      } catch (e) {
        return this.#sendError(id, e as CellError);
      }
    }
    const call = new ServerCall(this.#server.name, frame, this.#peer);
    let result: unknown;
    try {
      result = dispatch.handler(frame.payload as never, call);
    } catch (e) {
      return this.#fail(id, call, e);
    }
    if (isThenable(result)) {
      // In flight until it settles: cancellable, swept at its deadline. A handler that answered
      // synchronously was never in flight for anything else to see.
      this.#calls.set(id, call);
      if (call.deadline !== Infinity) this.#server.deadlines.watch(call.deadline);
      result.then(
        (value) => this.#succeed(id, call, dispatch, value),
        (e) => this.#fail(id, call, e),
      );
    } else {
      call.finish();
      this.#respond(id, call, dispatch, result);
    }
  }

  #succeed(id: number, call: ServerCall, dispatch: Dispatch, value: unknown): void {
    if (call.done) return;
    call.finish();
    this.#forget(id);
    this.#respond(id, call, dispatch, value);
  }

  #respond(id: number, call: ServerCall, dispatch: Dispatch, value: unknown): void {
    // A call whose deadline passed was already answered by the deadline sweep, and is `done`.
    const response = dispatch.method.response;
    if (!response.check(value)) {
      const errors = response.errors(value);
      const first = errors[0];
      return this.#sendError(
        id,
        new CellError(
          "INTERNAL",
          `Handler '${call.method}' returned an invalid ${response.name}` +
            (first ? ` (${first.path || "(value)"}: ${first.message})` : "") +
            ": this is a bug in the cell",
          { details: { protein: response.name, errors } },
        ),
      );
    }
    try {
      this.#conn.send({ kind: FrameKind.RESPONSE, id, payload: value, encode: dispatch.encode });
    } catch (e) {
      this.#sendError(id, CellError.from(e));
    }
  }

  #fail(id: number, call: ServerCall, error: unknown): void {
    if (call.done) return;
    call.finish();
    this.#forget(id);
    if (!(error instanceof CellError)) this.#server.onError(error, call.method);
    this.#sendError(id, CellError.from(error));
  }

  async #serveSchema(id: number): Promise<void> {
    try {
      const schema = await withDocs(this.#server.schema);
      this.#conn.send({ kind: FrameKind.RESPONSE, id, payload: schema });
    } catch (e) {
      this.#sendError(id, CellError.from(e));
    }
  }

  #forget(id: number): void {
    this.#calls.delete(id);
    if (this.#calls.size === 0 && this.#drained) this.#drained();
  }

  #onMalformed(m: MalformedFrame): void {
    this.#sendError(m.id ?? 0, m.error);
  }

  #onClose(): void {
    const reason = new CellError("CANCELLED", "The caller disconnected");
    for (const call of this.#calls.values()) {
      call.abort(reason);
      call.finish();
    }
    this.#calls.clear();
    this.#drained?.();
    this.#server.forget(this);
  }

  #sendError(id: number, error: CellError): void {
    this.#trySend({
      kind: FrameKind.ERROR,
      id,
      code: error.codeNumber,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
    });
  }

  #trySend(frame: Frame): void {
    if (this.#conn.closed) return;
    try {
      this.#conn.send(frame);
    } catch (e) {
      // The only frame that can be too large is an error's details: send it without them.
      if (frame.kind === FrameKind.ERROR && frame.details !== undefined) {
        const { details: _details, ...bare } = frame;
        this.#trySend(bare);
      } else if (!(e instanceof CellError && e.code === "UNAVAILABLE")) {
        throw e;
      }
    }
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x instanceof Promise ||
    (typeof x === "object" && x !== null && typeof (x as PromiseLike<unknown>).then === "function");
}
