/**
 * The key-value state machine every member applies committed commands to, with MessagePack
 * encodings of commands and snapshots, and deduplication of retried commands by client session.
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { KvCommand, KvResult } from "./types.ts";

// One of each, reused: `encode()` and `decode()` build a new one (and its buffers) per call,
// which was a visible share of a leader's CPU per write.
const encoder = new Encoder();
const decoder = new Decoder();
const encode = (value: unknown): Uint8Array => encoder.encode(value);
const decode = (bytes: Uint8Array): unknown => decoder.decode(bytes);

/**
 * Encodes a command as an entry payload.
 *
 * @example
 * ```ts
 * import { decodeCommand, encodeCommand } from "@cell/consensus/kv";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeCommand({ op: "put", key: "a", value: "1" });
 * assert.deepEqual(decodeCommand(bytes), { op: "put", key: "a", value: "1" });
 * ```
 */
export function encodeCommand(command: KvCommand): Uint8Array {
  return encode(command);
}

/** Decodes an entry payload; throws `TypeError` when it is not a command. */
export function decodeCommand(data: Uint8Array): KvCommand {
  const c = decode(data) as Record<string, unknown>;
  const str = (v: unknown) => typeof v === "string";
  const strOrNull = (v: unknown) => v === null || typeof v === "string";
  const session = (c.client === undefined || str(c.client)) &&
    (c.seq === undefined || Number.isSafeInteger(c.seq));
  const valid = c !== null && typeof c === "object" && str(c.key) && session &&
    ((c.op === "put" && str(c.value)) || c.op === "delete" ||
      (c.op === "cas" && strOrNull(c.expected) && strOrNull(c.value)));
  if (!valid) throw new TypeError(`Entry holds ${JSON.stringify(c)}: expected a KvCommand`);
  return c as unknown as KvCommand;
}

/** Client sessions a {@linkcode KvStore} remembers by default. */
export const DEFAULT_MAX_SESSIONS = 65_536;

interface Session {
  seq: number;
  result: KvResult;
}

interface SnapshotData {
  index: number;
  data: [string, string][];
  sessions: [string, number, boolean, string | null, number][];
}

/**
 * The key-value map. Applies commands in log order; a command whose client session was already
 * applied returns the recorded result instead of applying again.
 *
 * @example
 * ```ts
 * import { KvStore } from "@cell/consensus/kv";
 * import assert from "node:assert/strict";
 *
 * const kv = new KvStore();
 * kv.apply(1, { op: "put", key: "a", value: "1", client: "c1", seq: 1 });
 * const retry = kv.apply(2, { op: "put", key: "a", value: "1", client: "c1", seq: 1 });
 * assert.deepEqual(retry, { ok: true, previous: null, index: 1 });
 * assert.equal(kv.get("a"), "1");
 * const copy = new KvStore();
 * copy.restore(kv.snapshot());
 * assert.equal(copy.get("a"), "1");
 * ```
 */
export class KvStore {
  #data = new Map<string, string>();
  /** By recency of use, oldest first: every member evicts the same ones, in log order. */
  #sessions = new Map<string, Session>();
  #index = 0;
  readonly #maxSessions: number;

  /**
   * `maxSessions` bounds the client sessions remembered for deduplication (the least recently
   * used is forgotten first, on every member alike): a retry that arrives after its session was
   * forgotten is applied again. Clients use a session per write in flight, so the default keeps
   * the sessions of tens of thousands of concurrent writers.
   */
  constructor(options: { maxSessions?: number } = {}) {
    const max = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxSessions must be a positive integer, got ${max}`);
    }
    this.#maxSessions = max;
  }

  /** Index of the last command applied (or of the restored snapshot). */
  get appliedIndex(): number {
    return this.#index;
  }

  /** Number of keys. */
  get size(): number {
    return this.#data.size;
  }

  /** The value of `key`, or `null`. */
  get(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  /** Records that entry `index` carried no command (a noop or a config change). */
  skip(index: number): void {
    this.#index = index;
  }

  /** Applies the command of entry `index`. */
  apply(index: number, command: KvCommand): KvResult {
    this.#index = index;
    const { client, seq } = command;
    if (client !== undefined && seq !== undefined) {
      const session = this.#sessions.get(client);
      if (session && seq <= session.seq) {
        return seq === session.seq ? session.result : { ok: false, previous: null, index };
      }
    }
    const previous = this.#data.get(command.key) ?? null;
    let ok = true;
    if (command.op === "put") {
      this.#data.set(command.key, command.value);
    } else if (command.op === "delete") {
      this.#data.delete(command.key);
    } else if (previous !== command.expected) {
      ok = false;
    } else if (command.value === null) {
      this.#data.delete(command.key);
    } else {
      this.#data.set(command.key, command.value);
    }
    const result = { ok, previous, index };
    if (client !== undefined && seq !== undefined) {
      this.#sessions.delete(client); // To the end: the most recently used.
      this.#sessions.set(client, { seq, result });
      if (this.#sessions.size > this.#maxSessions) {
        this.#sessions.delete(this.#sessions.keys().next().value!);
      }
    }
    return result;
  }

  /** Serializes the map and the sessions. */
  snapshot(): Uint8Array {
    const body: SnapshotData = {
      index: this.#index,
      data: [...this.#data],
      sessions: [...this.#sessions].map((
        [c, s],
      ) => [c, s.seq, s.result.ok, s.result.previous, s.result.index]),
    };
    return encode(body);
  }

  /** Replaces the state with a snapshot's. */
  restore(bytes: Uint8Array): void {
    const body = decode(bytes) as SnapshotData;
    this.#index = body.index;
    this.#data = new Map(body.data);
    this.#sessions = new Map(
      body.sessions.map(([c, seq, ok, previous, index]) => [c, {
        seq,
        result: { ok, previous, index },
      }]),
    );
  }
}
