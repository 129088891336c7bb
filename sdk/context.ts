/**
 * What a handler knows about the call it serves.
 *
 * @module
 */

/** Who is calling, as far as the transport can tell. */
export interface PeerInfo {
  /** The transport the call came over: `"uds"`, `"inproc"`, later `"shm"` and `"quic"`. */
  readonly transport: string;
  /** The identity the peer declared in its HELLO (a client name, node id or instance id). */
  readonly id?: string;
  /** The peer's implementation, for example `cell-ts/0.1.0`. */
  readonly agent?: string;
}

/** The context of one call, passed to every handler as its second argument. */
export interface CallContext {
  /** Name of the cell serving the call. */
  readonly cell: string;
  /** Name of the method called. */
  readonly method: string;
  /** When the caller stops waiting, in ms since the epoch (`Infinity` when it never does). */
  readonly deadline: number;
  /**
   * Aborted when the caller cancels, the deadline passes, or the server shuts down before the
   * handler finishes. Pass it on to `fetch` and to calls of other cells.
   */
  readonly signal: AbortSignal;
  /** Who is calling. */
  readonly peer: PeerInfo;
  /** Key-value metadata sent with the call (tracing ids, auth tokens, ...). */
  readonly metadata: Readonly<Record<string, string>>;
}
