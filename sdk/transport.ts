/**
 * The one interface every transport implements: Unix sockets and in-process here; the
 * shared-memory ring and QUIC are further adapters behind the same interface.
 *
 * A transport moves whole {@linkcode Frame}s. Byte-stream transports encode them as the wire
 * protocol says; the in-process transport hands the frame objects over as they are.
 *
 * @module
 */
import { CellError } from "./errors.ts";
import type { Frame, MalformedFrame, PayloadDecoders } from "./protocol.ts";

/** What the owner of a connection is told. */
export interface ConnectionHandlers {
  /** Called for every frame received, in order. */
  onFrame(frame: Frame): void;
  /** Called for a frame body that could not be understood; the connection stays usable. */
  onMalformed(malformed: MalformedFrame): void;
  /** Called once when the connection closes, with the reason when it was not a clean close. */
  onClose(reason: CellError | undefined): void;
  /**
   * The compiled decoders of the payloads this side expects, for transports that decode frames
   * in place (the shared-memory ring); others decode every payload generally.
   */
  decoders?: PayloadDecoders;
}

/** One connection between a client and a server. */
export interface Connection {
  /** Name of the transport: `"uds"`, `"inproc"`, ... */
  readonly transport: string;
  /** True once the connection is closed. */
  readonly closed: boolean;
  /** Largest frame body the peer accepts; raised or lowered by its HELLO. */
  peerMaxFrame: number;
  /** Starts delivering received frames to `handlers`. */
  start(handlers: ConnectionHandlers): void;
  /**
   * Queues a frame for sending. Throws `RESOURCE_EXHAUSTED` if it exceeds `peerMaxFrame` and
   * `UNAVAILABLE` if the connection is closed; nothing is sent then.
   */
  send(frame: Frame): void;
  /** Closes the connection; frames already queued are flushed first when possible. */
  close(reason?: CellError): void;
}

/** A listening endpoint. */
export interface Listener {
  /** The transport-specific address it listens on (a socket path, a cell name, ...). */
  readonly address: string;
  /** Stops accepting connections and releases the address. Open connections stay open. */
  close(): Promise<void>;
}

/** Options of {@linkcode Transport.listen}. */
export interface ListenOptions {
  /** Largest frame body accepted from peers. */
  maxFrame?: number;
}

/** Options of {@linkcode Transport.dial}. */
export interface DialOptions {
  /** Abandons dialing. */
  signal?: AbortSignal;
  /** Largest frame body accepted from the peer. */
  maxFrame?: number;
}

/** A way of carrying frames between a client and a server. */
export interface Transport {
  /** Name of the transport, as it appears in `PeerInfo.transport`. */
  readonly name: string;
  /** Listens at `address`, handing every accepted connection to `onConnection`. */
  listen(
    address: string,
    onConnection: (connection: Connection) => void,
    options?: ListenOptions,
  ): Promise<Listener>;
  /** Connects to `address`; fails with `UNAVAILABLE` when nothing listens there. */
  dial(address: string, options?: DialOptions): Promise<Connection>;
}

/** The error `Connection.send` throws once the connection is closed. */
export function closedConnection(): CellError {
  return new CellError("UNAVAILABLE", "Connection is closed: reconnect to send more calls");
}
