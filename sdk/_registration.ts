// Keeping one instance registered with the nucleus: register, heartbeat every lease interval,
// register again when the nucleus forgot the lease (it restarted) or could not be reached, and
// deregister on close. Quiet: with no nucleus it just tries again every interval.
import { join } from "node:path";
import { CellError } from "./errors.ts";
import type { Infer } from "./protein.ts";
import { type Client, connect } from "./client.ts";
import {
  type CoordinateValue,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  type InstanceEndpoint,
  type Lease,
  Nucleus,
  NUCLEUS_CELL,
} from "./nucleus_api.ts";
import { cellHome } from "./home.ts";

/** What to register. */
export interface RegistrationOptions {
  /** The Cell home whose nucleus to register with. */
  home?: string;
  /** Host id. @default {"$CELL_NODE_ID, node_id of $CELL_HOME/config.json, or the hostname"} */
  nodeId?: string;
  /** Instance id; empty or absent lets the nucleus pick. */
  instanceId?: string;
  /** Where the instance can be reached, best first. */
  endpoints: Infer<typeof InstanceEndpoint>[];
  /** @default {Deno.pid} */
  pid?: number;
  /** Free-form labels. */
  metadata?: Record<string, string>;
  /** Calls in flight, reported with each heartbeat. */
  inFlight?: () => number;
  /** The instance's network coordinate, reported with each heartbeat when known. */
  coordinate?: () => CoordinateValue | undefined;
}

/** The node id of this host: `CELL_NODE_ID`, `node_id` of `config.json`, or the hostname. */
export function nodeId(home?: string): string {
  const fromEnv = Deno.env.get("CELL_NODE_ID");
  if (fromEnv) return fromEnv;
  try {
    const path = join(home ?? cellHome(), "config.json");
    const config = JSON.parse(Deno.readTextFileSync(path)) as { node_id?: unknown };
    if (config.node_id !== undefined && config.node_id !== null) return String(config.node_id);
  } catch {
    // Not initialized, or not readable from a sandbox: fall back to the hostname.
  }
  try {
    return Deno.hostname();
  } catch {
    return "localhost"; // no --allow-sys=hostname; the nucleus knows its own node id anyway
  }
}

/** How long one exchange with the nucleus may take. */
const CALL_TIMEOUT_MS = 1000;

/** One instance kept registered with the nucleus until {@linkcode Registration.close}. */
export class Registration {
  readonly cell: string;
  readonly #options: RegistrationOptions;
  #client: Client<Nucleus> | undefined;
  #lease: Infer<typeof Lease> | undefined;
  #intervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #tick: Promise<unknown> | undefined;
  #closed = false;

  constructor(cell: string, options: RegistrationOptions) {
    this.cell = cell;
    this.#options = options;
  }

  /** The lease while registered. */
  get lease(): Infer<typeof Lease> | undefined {
    return this.#lease;
  }

  /**
   * Registers once, then keeps the registration alive in the background. A failed first
   * attempt is retried quietly, or with `strict` rejects (and stops) with what went wrong.
   */
  async start(options: { strict?: boolean } = {}): Promise<void> {
    if (options.strict) {
      try {
        await (this.#tick = this.#register());
      } catch (e) {
        await this.close();
        throw e;
      }
    } else {
      await (this.#tick = this.#step());
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const timer = setTimeout(async () => {
      this.#timer = undefined;
      await (this.#tick = this.#step());
      this.#schedule();
    }, this.#intervalMs);
    // Registration alone must not keep a process alive.
    Deno.unrefTimer(timer as unknown as number);
    this.#timer = timer;
  }

  async #connected(): Promise<Client<Nucleus>> {
    return this.#client ??= await connect<Nucleus>(NUCLEUS_CELL, {
      service: Nucleus,
      ...(this.#options.home === undefined ? {} : { home: this.#options.home }),
      connectTimeoutMs: CALL_TIMEOUT_MS,
      timeoutMs: CALL_TIMEOUT_MS,
      maxAttempts: 1,
    });
  }

  async #register(): Promise<Infer<typeof Lease>> {
    const client = await this.#connected();
    const o = this.#options;
    const lease = await client.register({
      cell: this.cell,
      node_id: o.nodeId ?? nodeId(o.home),
      ...(o.instanceId ? { instance_id: o.instanceId } : {}),
      endpoints: o.endpoints,
      pid: o.pid ?? Deno.pid,
      ...(o.metadata ? { metadata: o.metadata } : {}),
    });
    if (this.#closed) {
      await client.deregister({ lease_id: lease.lease_id }).catch(() => {});
      throw new CellError("CANCELLED", "Registration was closed");
    }
    this.#lease = lease;
    this.#intervalMs = lease.heartbeat_interval_ms || DEFAULT_HEARTBEAT_INTERVAL_MS;
    // At once, so that the instance is healthy (not starting) from the start.
    await this.#heartbeat(client, lease);
    return lease;
  }

  async #heartbeat(client: Client<Nucleus>, lease: Infer<typeof Lease>): Promise<void> {
    const coordinate = this.#options.coordinate?.();
    const answer = await client.heartbeat({
      lease_id: lease.lease_id,
      in_flight: Math.min(this.#options.inFlight?.() ?? 0, 0xffffffff),
      ...(coordinate === undefined
        ? {}
        : { coordinate: { ...coordinate, vec: [...coordinate.vec] } }),
    });
    this.#intervalMs = answer.heartbeat_interval_ms || this.#intervalMs;
  }

  async #step(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.#lease) {
        await this.#register();
        return;
      }
      // A lost connection is redialed by the client on the second try; a nucleus that
      // restarted answers NOT_FOUND, as it does for a lease it expired: register again.
      for (let attempt = 1;; attempt++) {
        try {
          return await this.#heartbeat(await this.#connected(), this.#lease);
        } catch (e) {
          const code = CellError.from(e).code;
          if (code === "NOT_FOUND") {
            this.#lease = undefined;
            await this.#register();
            return;
          }
          if (code !== "UNAVAILABLE" || attempt >= 2) throw e;
        }
      }
    } catch {
      // No nucleus, or it is restarting: try again next interval, quietly.
    }
  }

  /** Stops heartbeating and deregisters (best effort, within `timeoutMs`). */
  async close(timeoutMs = 500): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#tick?.catch(() => {});
    const client = this.#client;
    const lease = this.#lease;
    this.#client = undefined;
    this.#lease = undefined;
    if (client && lease) {
      await client.deregister({ lease_id: lease.lease_id }, { timeoutMs }).catch(() => {});
    }
    await client?.$close();
  }
}
