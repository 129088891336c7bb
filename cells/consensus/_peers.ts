// How a member sends Raft messages to its peers: one SDK client per peer instance, messages
// queued per peer and sent in batches by the `raft` method, fire and forget. Anything that cannot
// be delivered soon is dropped: Raft resends what matters (heartbeats, appends, votes).
import { type Client, connect } from "@cell/sdk";
import { Consensus } from "./service.ts";
import type { MemberId, RaftMessage } from "./types.ts";

/** Calls to one peer in flight at once; more messages wait and go in the next batch. */
const MAX_IN_FLIGHT = 2;
/** Messages queued for one peer before the oldest are dropped. */
const MAX_QUEUED = 2048;
/** Most messages in one `raft` call. */
const MAX_BATCH_MESSAGES = 256;
/** Most entry payload bytes in one `raft` call (frames are capped at 16 MiB). */
const MAX_BATCH_BYTES = 4 << 20;
/** After a failed call or dial, messages to that peer are dropped for this long (ms). */
const PAUSE_MS = 100;

/** Options of {@linkcode PeerLinks}. */
export interface PeerLinksOptions {
  /** The cell's name. */
  cell: string;
  /** Where a member serves: a Unix socket path. */
  addressOf(id: MemberId): string;
  /** Deadline of one `raft` call and of dialing a peer (ms). @default {1000} */
  timeoutMs?: number;
  /** How this member introduces itself to its peers. */
  peer?: string;
}

interface Link {
  queue: RaftMessage[];
  client: Client<Consensus> | undefined;
  connecting: Promise<void> | undefined;
  inFlight: number;
  pausedUntil: number;
  scheduled: boolean;
}

function sizeOf(message: RaftMessage): number {
  let bytes = 64;
  const entries = message.entries;
  if (Array.isArray(entries)) {
    for (const e of entries) bytes += 32 + ((e as { data?: Uint8Array }).data?.length ?? 0);
  }
  const snapshot = message.snapshot as { data?: Uint8Array } | undefined;
  if (snapshot?.data) bytes += snapshot.data.length;
  return bytes;
}

/** Delivers Raft messages to peers, batched, dropping what cannot be delivered. */
export class PeerLinks {
  readonly #options: PeerLinksOptions;
  readonly #links = new Map<MemberId, Link>();
  #closed = false;

  constructor(options: PeerLinksOptions) {
    this.#options = options;
  }

  /** Queues `message` for `message.to`; sent on the next turn of the event loop. */
  send(message: RaftMessage): void {
    if (this.#closed) return;
    let link = this.#links.get(message.to);
    if (!link) {
      link = {
        queue: [],
        client: undefined,
        connecting: undefined,
        inFlight: 0,
        pausedUntil: 0,
        scheduled: false,
      };
      this.#links.set(message.to, link);
    }
    if (Date.now() < link.pausedUntil) return;
    link.queue.push(message);
    if (link.queue.length > MAX_QUEUED) link.queue.splice(0, link.queue.length - MAX_QUEUED);
    if (!link.scheduled) {
      link.scheduled = true;
      queueMicrotask(() => {
        link.scheduled = false;
        this.#flush(message.to, link);
      });
    }
  }

  /** Closes every connection; later messages are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    const links = [...this.#links.values()];
    this.#links.clear();
    await Promise.allSettled(links.map(async (link) => {
      link.queue = [];
      await link.connecting;
      await link.client?.$close();
    }));
  }

  #pause(link: Link): void {
    link.pausedUntil = Date.now() + PAUSE_MS;
    link.queue = [];
  }

  #flush(id: MemberId, link: Link): void {
    if (this.#closed || link.queue.length === 0 || link.inFlight >= MAX_IN_FLIGHT) return;
    const client = link.client;
    if (!client) {
      link.connecting ??= this.#connect(id, link).finally(() => link.connecting = undefined);
      return;
    }
    let bytes = 0;
    let n = 0;
    while (n < link.queue.length && n < MAX_BATCH_MESSAGES) {
      bytes += sizeOf(link.queue[n]!);
      if (n > 0 && bytes > MAX_BATCH_BYTES) break;
      n++;
    }
    const messages = link.queue.splice(0, n);
    link.inFlight++;
    client.raft({ messages }, { timeoutMs: this.#options.timeoutMs ?? 1000 }).then(
      () => {},
      () => this.#pause(link),
    ).finally(() => {
      link.inFlight--;
      this.#flush(id, link);
    });
  }

  async #connect(id: MemberId, link: Link): Promise<void> {
    const timeoutMs = this.#options.timeoutMs ?? 1000;
    try {
      const client = await connect<Consensus>(this.#options.cell, {
        service: Consensus,
        address: this.#options.addressOf(id),
        transport: "uds",
        timeoutMs,
        connectTimeoutMs: timeoutMs,
        maxAttempts: 1,
        ...(this.#options.peer === undefined ? {} : { peer: this.#options.peer }),
      });
      if (this.#closed) {
        await client.$close();
        return;
      }
      link.client = client;
    } catch {
      this.#pause(link);
      return;
    }
    this.#flush(id, link);
  }
}
