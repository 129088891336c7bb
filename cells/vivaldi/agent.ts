/**
 * Measuring a coordinate: a {@linkcode VivaldiAgent} pings a random peer now and then with the
 * SDK's built-in PING frame (Cell's own transport, no handler involved), takes the peer's
 * coordinate from the nucleus's instance records (each instance reports its own with its
 * heartbeats: the exchange rides on messages that are sent anyway), and folds the RTT into its
 * own coordinate with {@linkcode VivaldiClient}.
 *
 * @module
 */
import { type Client, connect, type Infer, NucleusClient, type Transport } from "@cell/sdk";
import type { Instance } from "@cell/sdk/nucleus_api";
import { type Coordinate, VivaldiClient } from "./coordinate.ts";
import type { Random } from "./rng.ts";

type InstanceInfo = Infer<typeof Instance>;

/** Options of {@linkcode VivaldiAgent}. */
export interface AgentOptions {
  /**
   * The Cell home whose nucleus lists the peers.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /** The instance id of the process the agent measures for, so that it never pings itself. */
  self?: string;
  /**
   * Milliseconds between two probes.
   * @default {1000}
   */
  intervalMs?: number;
  /**
   * Deadline of one ping, connecting included (ms).
   * @default {2000}
   */
  timeoutMs?: number;
  /**
   * Euclidean dimensions of the coordinate.
   * @default {DEFAULT_DIMENSIONS}
   */
  dimensions?: number;
  /**
   * Randomness for the choice of peers and for Vivaldi.
   * @default {Math.random}
   */
  random?: Random;
  /**
   * The transport to dial peers' `uds` endpoints with (tests wrap it to add delay).
   * @default {udsTransport}
   */
  transport?: Transport;
  /** Told of every new coordinate (the Vivaldi cell passes it on as the host's). */
  onUpdate?: (coordinate: Coordinate) => void | Promise<void>;
}

/** How often the list of peers is asked of the nucleus again (ms). */
const PEERS_TTL_MS = 5000;
/** Connections to peers kept open at most; the least recently used one closes first. */
const MAX_CONNECTIONS = 16;

/** Peers worth pinging: healthy, reporting a coordinate, reachable on a Unix socket. */
function peersOf(instances: InstanceInfo[], self: string | undefined): InstanceInfo[] {
  return instances.filter((i) =>
    i.instance_id !== self && i.health === "healthy" && i.coordinate !== undefined &&
    i.endpoints.some((e) => e.transport === "uds")
  );
}

/**
 * Keeps a coordinate up to date by pinging random peers among the instances the nucleus knows.
 * Register the process with `coordinate: () => agent.coordinate` so that its heartbeats report
 * it, then {@linkcode VivaldiAgent.start}.
 *
 * @example
 * ```ts ignore
 * import { NucleusClient } from "@cell/sdk";
 * import { VivaldiAgent } from "@cell/vivaldi";
 *
 * const agent = new VivaldiAgent();
 * await using nucleus = await NucleusClient.connect();
 * const instance = await nucleus.register("my-service", "", {
 *   coordinate: () => agent.coordinate,
 * });
 * agent.self = instance.instanceId;
 * agent.start();
 * ```
 */
export class VivaldiAgent implements AsyncDisposable {
  /** The instance id the agent never pings. */
  self: string | undefined;
  readonly #options: AgentOptions;
  readonly #vivaldi: VivaldiClient;
  readonly #random: Random;
  readonly #connections = new Map<string, { address: string; client: Client<never> }>();
  #nucleus: NucleusClient | undefined;
  #peers: InstanceInfo[] = [];
  #peersAt = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #probing: Promise<boolean> | undefined;
  #samples = 0;
  #closed = false;

  /** Starts at the origin; nothing is measured before {@linkcode VivaldiAgent.start}. */
  constructor(options: AgentOptions = {}) {
    this.#options = options;
    this.self = options.self;
    this.#random = options.random ?? Math.random;
    this.#vivaldi = new VivaldiClient({
      random: this.#random,
      ...(options.dimensions === undefined ? {} : { dimensions: options.dimensions }),
    });
  }

  /**
   * The coordinate to report: the moving average of recent positions
   * ({@linkcode VivaldiClient.smoothedCoordinate}), which predicts RTTs better than the
   * jittering position itself.
   */
  get coordinate(): Coordinate {
    return this.#vivaldi.smoothedCoordinate;
  }

  /** RTT samples folded in so far. */
  get samples(): number {
    return this.#samples;
  }

  /** Peers known from the last look at the nucleus. */
  get peers(): number {
    return this.#peers.length;
  }

  /** Times the coordinate became non-finite and was reset. */
  get resets(): number {
    return this.#vivaldi.resets;
  }

  /** Probes every `intervalMs` until closed; timers do not keep the process alive. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const interval = this.#options.intervalMs ?? 1000;
    const tick = async () => {
      await (this.#probing ??= this.probe().finally(() => this.#probing = undefined));
      if (this.#closed) return;
      // Jitter, so that agents started together do not probe in lockstep.
      this.#schedule(tick, interval * (0.75 + this.#random() / 2));
    };
    this.#schedule(tick, 0);
  }

  #schedule(tick: () => void, ms: number): void {
    const timer = setTimeout(tick, ms);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /**
   * One probe: pings a random peer and folds the RTT in. Resolves `false` when there was no
   * peer or it did not answer (never rejects).
   */
  async probe(): Promise<boolean> {
    try {
      const peers = await this.#peerList();
      if (peers.length === 0 || this.#closed) return false;
      const peer = peers[Math.floor(this.#random() * peers.length)]!;
      const ms = await (await this.#connection(peer)).$ping({
        timeoutMs: this.#options.timeoutMs ?? 2000,
      });
      if (this.#closed) return false;
      this.#vivaldi.update(peer.instance_id, peer.coordinate!, ms / 1000);
      this.#samples++;
      await this.#options.onUpdate?.(this.coordinate);
      return true;
    } catch {
      // A peer that left, a bad sample, a nucleus restarting: the next probe tries another.
      this.#peersAt = -Infinity;
      return false;
    }
  }

  async #peerList(): Promise<InstanceInfo[]> {
    if (Date.now() - this.#peersAt < PEERS_TTL_MS) return this.#peers;
    const home = this.#options.home;
    this.#nucleus ??= await NucleusClient.connect(home === undefined ? {} : { home });
    const { instances } = await this.#nucleus.discover("");
    this.#peers = peersOf(instances, this.self);
    this.#peersAt = Date.now();
    const live = new Set(this.#peers.map((p) => p.instance_id));
    for (const [id, c] of this.#connections) {
      if (!live.has(id)) {
        this.#vivaldi.forget(id);
        this.#connections.delete(id);
        await c.client.$close();
      }
    }
    return this.#peers;
  }

  async #connection(peer: InstanceInfo): Promise<Client<never>> {
    const address = peer.endpoints.find((e) => e.transport === "uds")!.address;
    const known = this.#connections.get(peer.instance_id);
    if (known?.address === address) {
      this.#connections.delete(peer.instance_id); // re-inserted last: most recently used
      this.#connections.set(peer.instance_id, known);
      return known.client;
    }
    if (known) await known.client.$close();
    const timeoutMs = this.#options.timeoutMs ?? 2000;
    const client = await connect<never>(peer.cell, {
      address,
      transport: this.#options.transport ?? "uds",
      timeoutMs,
      connectTimeoutMs: timeoutMs,
      maxAttempts: 1,
      peer: "vivaldi",
    });
    this.#connections.set(peer.instance_id, { address, client });
    if (this.#connections.size > MAX_CONNECTIONS) {
      const [oldest, c] = this.#connections.entries().next().value!;
      this.#connections.delete(oldest);
      await c.client.$close();
    }
    return client;
  }

  /** Stops probing and closes the connections to peers and to the nucleus. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#probing;
    const clients = [...this.#connections.values()].map((c) => c.client.$close());
    this.#connections.clear();
    await Promise.allSettled(clients);
    await this.#nucleus?.close();
  }

  /** Same as {@linkcode VivaldiAgent.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
