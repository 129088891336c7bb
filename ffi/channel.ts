/**
 * One side of an established ring connection: the segment, a writer on the outgoing ring, a
 * reader on the incoming one, the futex words to sleep on and to wake the peer with, and the
 * handshake socket kept open so that the death of the peer is seen (its end closes).
 *
 * @module
 */
import type { RingSymbols } from "./lib.ts";
import { closedOffset, RingReader, RingWriter, sleepOffset } from "./ring.ts";
import type { Segment } from "./segment.ts";

/** Which side a channel is: the dialing client (0) or the accepting server (1). */
export type RingSide = 0 | 1;

/**
 * An established ring connection (see the module documentation), made by `listenRing` on the
 * server side and `dialRing` on the client side.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { RingChannel } from "@cell/ring";
 * // Write, then wake the peer if it sleeps.
 * function send(channel: RingChannel, bytes: Uint8Array): boolean {
 *   const ok = channel.writer.write(bytes, false);
 *   channel.notify();
 *   return ok;
 * }
 * assert.ok(typeof send === "function");
 * ```
 */
export class RingChannel {
  /** Writes to the peer. */
  readonly writer: RingWriter;
  /** Reads from the peer. */
  readonly reader: RingReader;
  /** Process id of the peer, from `SO_PEERCRED`. */
  readonly peerPid: number;
  /** The segment (already unlinked from `/dev/shm` once the handshake completed). */
  readonly segment: Segment;
  /** This side: 0 for the client, 1 for the server. */
  readonly side: RingSide;
  #lib: RingSymbols;
  #fd: number;
  #i32: Int32Array;
  #mySleep: number;
  #peerSleep: number;
  #myClosed: number;
  #peerClosed: number;
  #mySleepPointer: Deno.PointerObject;
  #peerSleepPointer: Deno.PointerObject;
  #waits = 0;
  #closed = false;
  #fdOpen = true;

  constructor(lib: RingSymbols, segment: Segment, side: RingSide, fd: number, peerPid: number) {
    this.#lib = lib;
    this.segment = segment;
    this.side = side;
    this.#fd = fd;
    this.peerPid = peerPid;
    const pointer = segment.pointer, bytes = segment.buffer.byteLength;
    this.writer = new RingWriter(segment.buffer, side === 0 ? 0 : 1, (offset, source, length) => {
      const rc = lib.cell_ring_copy(pointer, bytes, offset, source, length);
      if (rc !== 0) throw new RangeError(`cell_ring_copy(${offset}, ${length}) failed: ${rc}`);
    });
    this.reader = new RingReader(segment.buffer, side === 0 ? 1 : 0);
    this.#i32 = new Int32Array(segment.buffer, 0, 128);
    const peer = 1 - side;
    this.#mySleep = sleepOffset(side) / 4;
    this.#peerSleep = sleepOffset(peer) / 4;
    this.#myClosed = closedOffset(side) / 4;
    this.#peerClosed = closedOffset(peer) / 4;
    this.#mySleepPointer = Deno.UnsafePointer.offset(segment.pointer, sleepOffset(side))!;
    this.#peerSleepPointer = Deno.UnsafePointer.offset(segment.pointer, sleepOffset(peer))!;
  }

  /** True once {@linkcode RingChannel.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Wakes the peer if it sleeps: call after writing. Costs a load when it does not. Returns
   * true when the peer was asleep.
   *
   * Where records are published with plain stores (x86-64, see `_order.ts`), no barrier orders
   * that load after them (they may still sit in this core's store buffer), so a peer going to
   * sleep at that very moment can be missed: it sees the records itself, as
   * {@linkcode RingChannel.sleep} watches the slot they arrive at.
   */
  notify(): boolean {
    if (Atomics.load(this.#i32, this.#peerSleep) === 0) return false;
    Atomics.store(this.#i32, this.#peerSleep, 0);
    this.#lib.cell_ring_wake(this.#peerSleepPointer);
    return true;
  }

  /**
   * Announces that this side is about to sleep. The caller must then check for work once more
   * (a writer that published just before the announcement did not wake it) and either call
   * {@linkcode RingChannel.sleep} or {@linkcode RingChannel.awake}.
   */
  prepareSleep(): void {
    Atomics.store(this.#i32, this.#mySleep, 1);
  }

  /** Cancels {@linkcode RingChannel.prepareSleep}, or ends a sleep early (wakes it). */
  awake(): void {
    if (Atomics.exchange(this.#i32, this.#mySleep, 0) !== 0 && this.#waits > 0) {
      this.#lib.cell_ring_wake(this.#mySleepPointer);
    }
  }

  /**
   * Sleeps on a worker thread until the peer wakes this side, a record arrives, `timeoutMs`
   * pass, or the peer's socket end closes: resolves to 1, 0 or a negative errno (-EPIPE)
   * respectively. A record that arrives unannounced (see {@linkcode RingChannel.notify}) ends
   * the sleep before it starts or within 50 ms.
   */
  async sleep(timeoutMs: number): Promise<number> {
    this.#waits++;
    try {
      const watch = Deno.UnsafePointer.offset(this.segment.pointer, this.reader.waitOffset);
      return await this.#lib.cell_ring_wait(this.#mySleepPointer, 1, this.#fd, timeoutMs, watch);
    } finally {
      Atomics.store(this.#i32, this.#mySleep, 0);
      if (--this.#waits === 0 && this.#closed) this.#closeSocket();
    }
  }

  /** True once the peer has closed its side cleanly. */
  peerClosed(): boolean {
    return Atomics.load(this.#i32, this.#peerClosed) !== 0;
  }

  /** True when the peer's end of the handshake socket is closed: it exited or was killed. */
  peerGone(): boolean {
    return this.#fdOpen && this.#lib.cell_ring_peer_gone(this.#fd) === 1;
  }

  /** Marks this side closed, wakes both sides, and releases the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#i32, this.#myClosed, 1);
    Atomics.store(this.#i32, this.#peerSleep, 0);
    this.#lib.cell_ring_wake(this.#peerSleepPointer);
    this.segment.unlink();
    if (this.#waits > 0) {
      // A worker thread still polls the socket: close it once that sleep returns.
      Atomics.store(this.#i32, this.#mySleep, 0);
      this.#lib.cell_ring_wake(this.#mySleepPointer);
    } else {
      this.#closeSocket();
    }
  }

  #closeSocket(): void {
    if (!this.#fdOpen) return;
    this.#fdOpen = false;
    this.#lib.cell_ring_shutdown(this.#fd);
    this.#lib.cell_ring_close(this.#fd);
  }
}
