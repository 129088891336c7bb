// The machinery behind every client: where the cell is (an address, this process, the
// instances the nucleus knows, or its socket), one lazily opened session per instance, the
// choice of instance per call, deadlines, and retries on another instance.
import { CellError } from "./errors.ts";
import {
  type PayloadDecoder,
  payloadDecoder,
  type PayloadEncoder,
  payloadEncoder,
} from "./_payload_codec.ts";
import type { RequestFrame } from "./protocol.ts";
import { DEFAULT_MAX_FRAME, FrameKind } from "./protocol.ts";
import type { Methods } from "./service.ts";
import { schemaOf } from "./schema.ts";
import type { Transport } from "./transport.ts";
import { type CoordinateValue, Nucleus, NUCLEUS_CELL } from "./nucleus_api.ts";
import type { CallOptions, ClientInfo, ConnectOptions } from "./client.ts";
import { AGENT } from "./_names.ts";
import {
  greeted,
  Pending,
  type Recovery,
  Session,
  UNPROCESSED,
  unprocessed,
} from "./_client_session.ts";
import { DeadlineTimer } from "./_deadlines.ts";
import { Balancer, DOWN_MS, mergeInstances, type Route, type Target } from "./_balancer.ts";
import { type InstanceInfo, resolveTargets, type Subscription } from "./_discovery.ts";

/** Deadline of a call when neither the client nor the call sets one: 10 seconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

const NO_OPTIONS: CallOptions = Object.freeze({});

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CellError("CANCELLED", "The call was cancelled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The machinery behind every client proxy. */
/** Calls with timeouts of at least this (ms) take their deadline from a shared clock tick. */
const COARSE_FROM_MS = 1000;
/** Period (ms) of that tick while such calls are sent: their deadlines are at most this late. */
const STAMP_EVERY_MS = 20;

export class ClientCore implements Recovery {
  readonly cell: string;
  readonly #options: ConnectOptions;
  readonly #idempotent: ReadonlySet<string>;
  /** Each method's compiled request encoder and response decoder, when the service is known. */
  readonly #codecs: ReadonlyMap<string, { encode: PayloadEncoder; decode: PayloadDecoder }>;
  readonly #expectedHash: string | undefined;
  readonly #balancer: Balancer;
  /** The session of the only target, when there is one: the fast path of `call`. */
  #session: Session | undefined;
  readonly #sessions = new Set<Session>();
  readonly #owners = new WeakMap<Session, Target>();
  #resolved: Promise<void> | undefined;
  #subscription: Subscription | undefined;
  #shm: Transport | undefined;
  #last: Target | undefined;
  #closed = false;
  readonly #deadlines = new DeadlineTimer((now) => this.#sweep(now));
  /** The next clock tick, armed while calls of the fast path wait for their deadline. */
  #stampTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(cell: string, options: ConnectOptions) {
    this.cell = cell;
    this.#options = options;
    this.#balancer = new Balancer(options.balance ?? "least-outstanding");
    const methods: Methods = options.service?.methods ?? {};
    this.#idempotent = new Set(Object.keys(methods).filter((m) => methods[m]!.idempotent));
    this.#codecs = new Map(
      Object.entries(methods).map((
        [m, method],
      ) => [m, {
        encode: payloadEncoder(method.request),
        decode: payloadDecoder(method.response),
      }]),
    );
    this.#expectedHash = options.schemaHash ??
      (options.service ? schemaOf(cell, options.service).hash : undefined);
  }

  get info(): ClientInfo {
    const t = this.#last ?? this.#balancer.targets[0];
    return {
      cell: this.cell,
      transport: t?.route.transport.name ?? "",
      address: t?.route.address ?? "",
      ...(t?.instanceId === undefined ? {} : { instance: t.instanceId }),
      schemaHash: t?.session?.hello?.schema_hash,
    };
  }

  /** Finds the cell and opens a session to one of its instances. */
  async open(): Promise<void> {
    await (this.#resolved ??= this.#resolve());
    const first = this.#pick();
    let error: unknown;
    for (const t of [first, ...this.#balancer.targets.filter((t) => t !== first)]) {
      try {
        await this.#sessionOf(t);
        this.#last = t;
        return;
      } catch (e) {
        error = e;
        if (CellError.from(e).code !== "UNAVAILABLE") break;
        this.#markDown(t);
      }
    }
    throw error;
  }

  async #resolve(): Promise<void> {
    const found = await resolveTargets(
      this.cell,
      this.#options,
      () => this.#nucleusClient(),
      (instances, source) => this.#update(instances, source),
    );
    this.#shm = found.shm;
    this.#balancer.source = found.subscription?.source; // vivaldi: where this client stands
    if (this.#closed) found.subscription?.unsubscribe();
    else this.#subscription = found.subscription;
    this.#setTargets(found.targets);
  }

  #nucleusClient(): ClientCore {
    return new ClientCore(NUCLEUS_CELL, {
      service: Nucleus,
      ...(this.#options.home === undefined ? {} : { home: this.#options.home }),
      connectTimeoutMs: 1000,
      maxAttempts: 1,
    });
  }

  /** Follows the nucleus: new instances join, removed ones drain, changed ones are up again. */
  #update(instances: InstanceInfo[], source: CoordinateValue | undefined): void {
    if (this.#closed) return;
    this.#balancer.source = source; // vivaldi: where this client stands
    this.#setTargets(
      mergeInstances(this.#balancer.targets, instances, this.#shm, (t) => this.#drain(t)),
    );
  }

  /** New calls go elsewhere; calls in flight on `t` finish, then its connection closes. */
  #drain(t: Target): void {
    const s = t.session;
    t.session = undefined;
    if (s && !s.conn.closed) {
      s.draining = true;
      s.maybeDone();
    }
  }

  #setTargets(targets: Target[]): void {
    this.#balancer.targets = targets;
    if (this.#last && !targets.includes(this.#last)) this.#last = undefined;
    this.#refreshFast();
  }

  #refreshFast(): void {
    const targets = this.#balancer.targets;
    this.#session = targets.length === 1 ? targets[0]!.ready : undefined;
  }

  #pick(): Target {
    const t = this.#balancer.pick();
    if (!t) throw new CellError("UNAVAILABLE", `No instance of '${this.cell}' to call`);
    this.#last = t;
    return t;
  }

  #markDown(t: Target | undefined): void {
    if (t && this.#balancer.targets.length > 1) t.downUntil = Date.now() + DOWN_MS;
  }

  #sessionOf(t: Target): Promise<Session> {
    const ready = t.ready;
    if (ready) return Promise.resolve(ready);
    if (this.#closed) {
      return Promise.reject(new CellError("CANCELLED", `Client of '${this.cell}' is closed`));
    }
    return t.connecting ??= this.#dialAny(t).finally(() => t.connecting = undefined);
  }

  async #dialAny(t: Target): Promise<Session> {
    let error: unknown;
    for (const route of t.routes) {
      try {
        return await this.#dial(t, route);
      } catch (e) {
        error = e;
        if (CellError.from(e).code !== "UNAVAILABLE") break;
      }
    }
    throw error;
  }

  async #dial(t: Target, route: Route): Promise<Session> {
    const timeoutMs = this.#options.connectTimeoutMs ?? 5000;
    const signal = AbortSignal.timeout(timeoutMs);
    const conn = await route.transport.dial(route.address, {
      signal,
      maxFrame: this.#options.maxFrame ?? DEFAULT_MAX_FRAME,
    });
    const session = new Session(conn, {
      max_frame: this.#options.maxFrame ?? DEFAULT_MAX_FRAME,
      agent: AGENT,
      ...(this.#options.peer === undefined ? {} : { peer: this.#options.peer }),
      ...(this.#expectedHash === undefined ? {} : { schema_hash: this.#expectedHash }),
    }, (gone, closed) => {
      if (t.session === gone) t.session = undefined;
      if (!closed) this.#markDown(t); // GOAWAY: the instance is draining
      if (closed) this.#sessions.delete(gone);
      this.#refreshFast();
    });
    this.#sessions.add(session);
    this.#owners.set(session, t);
    try {
      await greeted(session, timeoutMs, `'${this.cell}' at ${route.address}`);
    } catch (e) {
      conn.close();
      throw e;
    }
    const hash = session.hello?.schema_hash;
    if (this.#options.strict && this.#expectedHash && hash !== this.#expectedHash) {
      conn.close();
      throw new CellError(
        "FAILED_PRECONDITION",
        `'${this.cell}' serves schema ${hash}, not the expected ${this.#expectedHash}: ` +
          "regenerate or update the client, or connect without strict",
      );
    }
    if (this.#closed || t.removed) {
      conn.close();
      throw new CellError("CANCELLED", `Client of '${this.cell}' is closed`);
    }
    t.session = session;
    t.route = route;
    this.#refreshFast();
    return session;
  }

  call(method: string, payload: unknown, options: CallOptions = NO_OPTIONS): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // The common case, connected and not cancelled, without an extra promise or closure layer:
    // retries are only set up once an attempt fails (see recover).
    let session = this.#session;
    let target: Target | undefined;
    if (session === undefined && this.#balancer.targets.length > 1) {
      try {
        target = this.#pick();
      } catch (e) {
        return Promise.reject(e); // A promise, never a throw: as every other failure.
      }
      session = target.ready;
    }
    if (session && !session.conn.closed && !session.draining && !options.signal?.aborted) {
      if (timeoutMs < COARSE_FROM_MS) {
        const pending = new Pending(
          session,
          Date.now() + timeoutMs,
          method,
          payload,
          options,
          this,
        );
        this.#send(pending, timeoutMs);
        return pending.promise;
      }
      const pending = new Pending(session, 0, method, payload, options, this);
      pending.timeoutMs = timeoutMs;
      if (this.#stampTimer === undefined) {
        const timer = setTimeout(() => this.#stamp(), STAMP_EVERY_MS);
        Deno.unrefTimer(timer as unknown as number); // Deadlines alone keep no process alive.
        this.#stampTimer = timer;
      }
      this.#send(pending, timeoutMs);
      return pending.promise;
    }
    const deadline = Date.now() + timeoutMs;
    return this.#attempt(method, payload, deadline, options, target).catch((e) =>
      this.#recover(e, undefined, method, payload, deadline, options)
    );
  }

  /** A call sent on `pending.session` failed: retry it when that is allowed, else fail. */
  recover(error: CellError, pending: Pending): Promise<unknown> {
    return this.#recover(
      error,
      pending.session,
      pending.label,
      pending.payload,
      pending.deadline || Date.now() + pending.timeoutMs, // Not stamped yet: from now.
      pending.options,
    );
  }

  /**
   * The clock tick of calls with long timeouts: gives every call in flight that has no deadline
   * yet its deadline, counted from now. A clock read costs ~50 ns here, more than a tenth of a local
   * call; a tick every {@linkcode STAMP_EVERY_MS} while such calls are sent costs nothing per
   * call, and a deadline is never early, at most that late.
   */
  #stamp(): void {
    this.#stampTimer = undefined;
    const now = Date.now();
    for (const session of this.#sessions) {
      for (const p of session.pending.values()) {
        if (p.deadline !== 0) continue;
        p.deadline = now + p.timeoutMs;
        this.#deadlines.watch(p.deadline);
      }
    }
  }

  #recover(
    error: CellError,
    session: Session | undefined,
    method: string,
    payload: unknown,
    deadline: number,
    options: CallOptions,
  ): Promise<unknown> {
    if (error.code === "UNAVAILABLE" && session) this.#markDown(this.#owners.get(session));
    if (!this.#retryable(error, method, options, deadline)) return Promise.reject(error);
    return this.#retry(error, method, payload, deadline, options);
  }

  #maxAttempts(): number {
    const n = this.#balancer.targets.length;
    return this.#options.maxAttempts ?? (n > 1 ? Math.max(3, n + 2) : 3);
  }

  #retryable(error: CellError, method: string, options: CallOptions, deadline: number): boolean {
    return error.code === "UNAVAILABLE" && !this.#closed && Date.now() < deadline &&
      this.#maxAttempts() > 1 &&
      ((options.idempotent ?? this.#idempotent.has(method)) || UNPROCESSED.has(error));
  }

  async #retry(
    first: CellError,
    method: string,
    payload: unknown,
    deadline: number,
    options: CallOptions,
  ): Promise<unknown> {
    let error = first;
    let waits = 0;
    for (let attempt = 1;; attempt++) {
      // Another instance that is up takes the retry at once; otherwise back off.
      const elsewhere = this.#balancer.targets.length > 1 && this.#balancer.hasOtherUp(undefined);
      const backoff = elsewhere ? 0 : Math.min(1000, 25 * 2 ** waits++) * (0.5 + Math.random() / 2);
      if (
        attempt >= this.#maxAttempts() || !this.#retryable(error, method, options, deadline) ||
        Date.now() + backoff >= deadline
      ) {
        throw error;
      }
      if (backoff > 0) await sleep(backoff, options.signal);
      try {
        return await this.#attempt(method, payload, deadline, options);
      } catch (e) {
        error = CellError.from(e);
      }
    }
  }

  /** One attempt, finding the cell and connecting first if needed. */
  async #attempt(
    method: string,
    payload: unknown,
    deadline: number,
    options: CallOptions,
    chosen?: Target,
  ): Promise<unknown> {
    if (options.signal?.aborted) {
      throw new CellError("CANCELLED", `Call '${method}' was cancelled before it was sent`);
    }
    if (chosen) {
      // Counted at once, not after the await: the balancer must see this call on `chosen`
      // while its connection opens, or a burst of calls all pick the same idle-looking target.
      chosen.waiting++;
      try {
        await (this.#resolved ??= this.#resolve());
      } finally {
        chosen.waiting--;
      }
    } else {
      await (this.#resolved ??= this.#resolve());
    }
    const target = chosen && !chosen.removed ? chosen : this.#pick();
    let session: Session;
    target.waiting++;
    try {
      session = await this.#sessionOf(target);
    } catch (e) {
      // A call whose connection could not even be made was certainly not processed.
      const error = CellError.from(e);
      if (error.code !== "UNAVAILABLE") throw error;
      this.#markDown(target);
      throw unprocessed(error);
    } finally {
      target.waiting--;
    }
    try {
      const pending = new Pending(session, deadline, method, payload, options, undefined);
      this.#send(pending, deadline - Date.now());
      return await pending.promise;
    } catch (e) {
      if (e instanceof CellError && e.code === "UNAVAILABLE") this.#markDown(target);
      throw e;
    }
  }

  /** Sends the call `pending` on its session, `remaining` ms before its deadline. */
  #send(pending: Pending, remaining: number): void {
    const method = pending.label;
    if (remaining <= 0) {
      return pending.reject(
        new CellError("DEADLINE_EXCEEDED", `Call '${method}' ran out of time before it was sent`),
      );
    }
    const session = pending.session;
    const options = pending.options;
    const id = session.nextId();
    pending.id = id;
    session.pending.set(id, pending);
    if (this.#balancer.measures) pending.measure(this.#owners.get(session)); // vivaldi: nearest
    if (options.signal) pending.watch(options.signal);
    if (pending.deadline !== 0) this.#deadlines.watch(pending.deadline);
    const frame: RequestFrame = {
      kind: FrameKind.REQUEST,
      id,
      method,
      payload: pending.payload,
      timeoutMs: Math.ceil(remaining),
    };
    const codecs = this.#codecs.get(method); // One lookup for both directions.
    if (codecs !== undefined) {
      frame.encode = codecs.encode;
      pending.decode = codecs.decode;
    }
    if (options.metadata || this.#options.metadata) {
      frame.metadata = { ...this.#options.metadata, ...options.metadata };
    }
    try {
      session.conn.send(frame);
    } catch (e) {
      session.pending.delete(id);
      const error = CellError.from(e);
      pending.reject(error.code === "UNAVAILABLE" ? unprocessed(error) : error);
    }
  }

  #sweep(now: number): number {
    let next = Infinity;
    for (const session of this.#sessions) {
      for (const p of [...session.pending.values()]) {
        if (p.deadline === 0) continue; // Stamped by the next tick, from a later time.
        if (p.deadline <= now) {
          p.giveUp(
            new CellError(
              "DEADLINE_EXCEEDED",
              `Call '${p.label}' to '${this.cell}' got no answer within its deadline: ` +
                "raise timeoutMs, or check that the cell is healthy",
            ),
          );
        } else if (p.deadline < next) {
          next = p.deadline;
        }
      }
    }
    return next;
  }

  async ping(options: CallOptions = NO_OPTIONS): Promise<number> {
    await (this.#resolved ??= this.#resolve());
    const session = this.#session ?? await this.#sessionOf(this.#pick());
    const id = session.nextId();
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const pending = new Pending(session, deadline, "ping", undefined, options, undefined);
    pending.id = id;
    session.pending.set(id, pending);
    this.#deadlines.watch(deadline);
    session.conn.send({ kind: FrameKind.PING, id });
    await pending.promise;
    return performance.now() - started;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#deadlines.stop();
    clearTimeout(this.#stampTimer);
    this.#stampTimer = undefined;
    this.#session = undefined;
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    const reason = new CellError("CANCELLED", `Client of '${this.cell}' was closed`);
    for (const session of [...this.#sessions]) session.conn.close(reason);
    this.#sessions.clear();
    for (const t of this.#balancer.targets) t.session = undefined;
    return Promise.resolve();
  }
}
