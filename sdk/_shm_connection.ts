// A Connection over a ring channel of @cell/ring: frames are written straight into the outgoing
// ring, and one loop per connection polls the incoming ring — spinning while traffic flows,
// yielding to macrotasks about every millisecond, and parking on a futex (on a worker thread,
// the event loop stays free) once it has been idle for its spin budget.
import { setImmediate } from "node:timers";
import { type RingChannel, RingCorruptError } from "@cell/ring";
import { CellError } from "./errors.ts";
import {
  decodeFrameAt,
  decodeFrameBody,
  encodeFrame,
  encodeFrameBodyInto,
  type Frame,
  frameTooLarge,
  isMalformed,
} from "./protocol.ts";
import { closedConnection, type Connection, type ConnectionHandlers } from "./transport.ts";

/** Spin budget bounds (ms): the budget doubles when a park was too short, halves when long. */
const SPIN_MIN_MS = 0.05;
const SPIN_MAX_MS = 1;
/** Synchronous looks at the ring between two microtask turns (~1 µs). */
const SYNC_SPINS = 1000;
/** Microtask turns without records before polling synchronously. */
const QUIET_TURNS = 8;
/**
 * Records handled per turn of the loop at most: everything waiting, in practice (the bound only
 * keeps a peer that writes as fast as this side reads from starving other microtasks).
 */
const MAX_BATCH = 256;
/** Records read between two releases of their space to the writer. */
const RELEASE_EVERY = 4;
/**
 * Frames sent while delivering a batch (answers, mostly) between two publications: the peer
 * starts on the first while this side works on the rest, for one atomic store per group.
 */
const PUBLISH_EVERY = 16;
/** Longest stretch of spinning without letting macrotasks (timers, I/O) run. */
const YIELD_EVERY_MS = 1;
/** Longest sleep of a parked loop; the C side checks the peer's socket every 50 ms meanwhile. */
const PARK_MS = 1000;

const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

function peerDied(pid: number): CellError {
  return new CellError(
    "UNAVAILABLE",
    `Shared-memory peer (pid ${pid}) exited without closing the connection: reconnect`,
  );
}

/** Both ends of the connections whose two sides live in this process, by segment name. */
const local = new Map<string, (ShmConnection | undefined)[]>();

export class ShmConnection implements Connection {
  readonly transport = "shm";
  peerMaxFrame: number;
  #ch: RingChannel;
  #maxFrame: number;
  #handlers: ConnectionHandlers | undefined;
  #closed = false;
  /** Bodies (or their unsent rest) waiting for room in the outgoing ring. */
  #queue: { body: Uint8Array; offset: number }[] = [];
  /** Records of a message split over several, until its last arrives. */
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #generation = 0;
  #parked = false;
  #spinMs = SPIN_MIN_MS;
  /** True while #drain delivers frames: answers sent meanwhile are published in groups. */
  #draining = false;
  /** Records written while draining and not yet published. */
  #unpublished = 0;
  /**
   * Records the last drain delivered, until the loop's next turn: the callers they resumed are
   * about to send (a client's workers, their next calls), and their frames are published
   * together by the last of them, or at that next turn.
   */
  #resumed = 0;

  constructor(channel: RingChannel, maxFrame: number) {
    this.#ch = channel;
    this.#maxFrame = maxFrame;
    this.peerMaxFrame = maxFrame;
    if (channel.peerPid === Deno.pid) {
      // A peer in this very process cannot be woken by its futex while this side spins: the
      // event loop that would resolve its sleep does not turn. Kick it directly instead.
      const ends = local.get(channel.segment.name) ?? [];
      ends[channel.side] = this;
      local.set(channel.segment.name, ends);
    }
  }

  /** Starts the loop again if it is parked (a frame was just written for it). */
  wake(): void {
    if (this.#parked) this.#kick();
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(handlers: ConnectionHandlers): void {
    this.#handlers = handlers;
    this.#run();
  }

  send(frame: Frame): void {
    if (this.#closed) throw closedConnection();
    const writer = this.#ch.writer;
    if (this.#queue.length === 0) {
      // The common case: encode straight into the ring, as one record.
      const at = writer.claim();
      if (at >= 0) {
        const end = encodeFrameBodyInto(frame, writer.bytes, at, writer.room);
        if (end >= 0) {
          const length = end - at;
          if (length > this.peerMaxFrame) throw frameTooLarge(length, this.peerMaxFrame);
          writer.commit(length);
          // While a batch is delivered, publish every few frames, and at once after its last
          // record (the only one, when calls come one at a time). Frames sent by the callers
          // that batch resumed go out together too, with the last of them (a lone caller's at
          // once): one publication, and the peer finds them in consecutive lines.
          if (this.#draining) {
            if (++this.#unpublished < PUBLISH_EVERY && this.#ch.reader.readyInLine()) return;
          } else if (this.#resumed > 1) {
            this.#resumed--;
            if (++this.#unpublished < PUBLISH_EVERY) return;
          }
          this.#publishSent();
          if (this.#parked) this.#kick();
          return;
        }
      }
    }
    const body = encodeFrame(frame, this.peerMaxFrame).subarray(4);
    if (this.#queue.length > 0) this.#queue.push({ body, offset: 0 });
    else {
      const offset = this.#write(body, 0);
      if (offset < body.length) this.#queue.push({ body, offset });
    }
    this.#publishSent();
    if (this.#parked) this.#kick();
  }

  close(reason?: CellError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    try {
      this.#flush();
      this.#ch.writer.publish();
      this.#ch.notify();
    } catch {
      // A corrupt segment: nothing more can be sent.
    }
    this.#ch.close();
    local.delete(this.#ch.segment.name);
    this.#handlers?.onClose(reason);
  }

  /** Writes `body` from `offset` in records; returns how far it got before the ring filled. */
  #write(body: Uint8Array, offset: number): number {
    const writer = this.#ch.writer;
    const max = writer.maxRecord;
    while (offset < body.length) {
      const end = Math.min(body.length, offset + max);
      const part = offset === 0 && end === body.length ? body : body.subarray(offset, end);
      if (!writer.write(part, end < body.length, false)) {
        writer.publish(); // Full: let the reader see what is there, to make room.
        break;
      }
      offset = end;
    }
    return offset;
  }

  #flush(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      head.offset = this.#write(head.body, head.offset);
      if (head.offset < head.body.length) break;
      this.#queue.shift();
    }
    this.#ch.writer.publish();
    this.#ch.notify();
  }

  /** Delivers every complete message waiting in the incoming ring; returns how many records. */
  #drain(): number {
    // Frames held back for callers that did not all send go out now, at the next turn.
    if (this.#unpublished > 0) this.#publishSent();
    this.#draining = true;
    let records = 0;
    try {
      return records = this.#deliver();
    } finally {
      this.#draining = false;
      this.#resumed = records;
      if (this.#unpublished > 0) this.#publishSent();
    }
  }

  /** Publishes every frame written so far and wakes the peer if it sleeps. */
  #publishSent(): void {
    this.#unpublished = 0;
    this.#ch.writer.publish();
    if (this.#ch.notify()) local.get(this.#ch.segment.name)?.[1 - this.#ch.side]?.wake();
  }

  #deliver(): number {
    const reader = this.#ch.reader;
    const handlers = this.#handlers!;
    let records = 0;
    // The space of the records read by the previous turn goes back now, not as that turn ended:
    // there it would delay (by an atomic store) the callers its frames resolved.
    reader.release();
    // Everything waiting, with its space given back every few records, and answers published
    // every few frames (see #drain): the peer starts on the first answers, and refills the
    // ring, while this side works on the rest.
    const bytes = reader.bytes;
    for (let at = reader.nextOffset(); at >= 0; at = reader.nextOffset()) {
      records++;
      const length = reader.length;
      if (!reader.more && this.#parts.length === 0) {
        // The common case: a whole frame in one record, decoded in place.
        if (length > this.#maxFrame) throw this.#tooLong(length);
        const frame = decodeFrameAt(bytes, at, at + length, handlers.decoders);
        if (frame !== null) {
          if (isMalformed(frame)) handlers.onMalformed(frame);
          else handlers.onFrame(frame);
          if (this.#closed) return records;
        }
        if (records >= MAX_BATCH) break;
        // The next header in a cache line not read yet: let the callers this frame woke run
        // first (the next turn of the loop looks). Looking now would wait on that line (the
        // writer's, ~70-300 ns on these VMs) before a caller's await resumes.
        if (!reader.readyInLine()) break;
        if ((records & (RELEASE_EVERY - 1)) === 0) reader.release();
        continue;
      }
      // A message split over several records: gather them.
      this.#partBytes += length;
      if (this.#partBytes > this.#maxFrame) throw this.#tooLong(this.#partBytes);
      this.#parts.push(bytes.slice(at, at + length));
      if (reader.more) continue;
      const body = new Uint8Array(this.#partBytes);
      let offset = 0;
      for (const part of this.#parts) {
        body.set(part, offset);
        offset += part.length;
      }
      this.#parts = [];
      this.#partBytes = 0;
      const frame = decodeFrameBody(body);
      if (frame === null) continue;
      if (isMalformed(frame)) handlers.onMalformed(frame);
      else handlers.onFrame(frame);
      if (this.#closed) return records;
      if (records >= MAX_BATCH) break;
    }
    if (this.#queue.length > 0) this.#flush();
    return records;
  }

  #tooLong(length: number): CellError {
    return new CellError(
      "RESOURCE_EXHAUSTED",
      `Frame of ${length} bytes exceeds the limit of ${this.#maxFrame} bytes: ` +
        "send smaller messages or raise maxFrame on both sides",
    );
  }

  #kick(): void {
    this.#parked = false;
    this.#ch.awake();
    this.#run();
  }

  async #run(): Promise<void> {
    const generation = ++this.#generation;
    const reader = this.#ch.reader;
    let idleSince = -1;
    let lastYield = performance.now();
    let empty = 0;
    try {
      while (generation === this.#generation) {
        if (this.#drain() > 0) {
          idleSince = -1;
          empty = 0;
        } else {
          // Once other microtasks (callers sending more) had a few turns, poll synchronously
          // for a moment: cheaper than a microtask turn per look, and the answer to a call
          // just sent usually lands within it.
          if (++empty > QUIET_TURNS) {
            for (let i = 0; i < SYNC_SPINS && !reader.ready(); i++);
            if (reader.ready()) continue;
          }
          if ((empty & 15) === 0) {
            const now = performance.now();
            if (idleSince < 0) idleSince = now;
            if (this.#ch.peerClosed()) return this.#peerLeft();
            if ((empty & 1023) === 0 && this.#ch.peerGone()) return this.#peerLeft();
            if (now - idleSince > this.#spinMs) {
              await this.#park(generation);
              idleSince = -1;
              empty = 0;
              lastYield = performance.now();
              continue;
            }
            if (now - lastYield > YIELD_EVERY_MS) {
              await macrotask();
              lastYield = performance.now();
              continue;
            }
          }
        }
        await null;
      }
    } catch (e) {
      if (generation !== this.#generation) return;
      this.#fail(e);
    }
  }

  async #park(generation: number): Promise<void> {
    const ch = this.#ch;
    ch.reader.release();
    ch.prepareSleep();
    if (ch.reader.ready() || ch.peerClosed() || this.#closed) return ch.awake();
    this.#parked = true;
    const started = performance.now();
    // With frames queued for a full ring, poll for room every millisecond.
    const result = await ch.sleep(this.#queue.length > 0 ? 1 : PARK_MS);
    if (generation !== this.#generation) return;
    this.#parked = false;
    const slept = performance.now() - started;
    if (slept < 4 * this.#spinMs) this.#spinMs = Math.min(SPIN_MAX_MS, this.#spinMs * 2);
    else if (slept > 100 * this.#spinMs) this.#spinMs = Math.max(SPIN_MIN_MS, this.#spinMs / 2);
    if (result < 0 && !ch.reader.ready()) this.#peerLeft();
  }

  /** The peer closed cleanly (its flag is set) or vanished (its socket closed without it). */
  #peerLeft(): void {
    if (this.#closed) return;
    try {
      while (this.#drain() > 0 && !this.#closed);
    } catch (e) {
      return this.#fail(e);
    }
    if (this.#closed) return;
    this.close(this.#ch.peerClosed() ? undefined : peerDied(this.#ch.peerPid));
  }

  #fail(e: unknown): void {
    if (this.#closed) return;
    if (e instanceof RingCorruptError) {
      return this.close(
        new CellError("DATA_LOSS", `Shared-memory ring from the peer is corrupt: ${e.message}`, {
          cause: e,
        }),
      );
    }
    this.close(CellError.from(e));
  }
}
