// Finding the instances of a cell through the nucleus, and following changes with its `watch`
// long-poll: one watcher per cell (and Cell home) per process, shared by every client of that
// cell, stopped when the last one closes.
import type { Infer } from "./protein.ts";
import type { CallOptions, ConnectOptions } from "./client.ts";
import {
  type CoordinateValue,
  type Instance,
  type Instances,
  NUCLEUS_CELL,
} from "./nucleus_api.ts";
import { CellError } from "./errors.ts";
import type { Transport } from "./transport.ts";
import { inprocTransport } from "./inproc.ts";
import { udsTransport } from "./uds.ts";
import { loadShm, shmAddress } from "./shm.ts";
import { socketPath } from "./home.ts";
import { mergeInstances, type Route, Target } from "./_balancer.ts";

/** One instance as the nucleus describes it. */
export type InstanceInfo = Infer<typeof Instance>;

/** What discovery needs of a client of the nucleus. */
export interface NucleusCaller {
  call(method: string, payload: unknown, options?: CallOptions): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Told of the new instance list each time it changes, with this host's network coordinate when
 * the nucleus knows it (where the client stands, for the `nearest` balance).
 */
export type InstancesListener = (
  instances: InstanceInfo[],
  source: CoordinateValue | undefined,
) => void;

/** A live subscription to the instances of one cell. */
export interface Subscription {
  /** Instances known now. */
  readonly instances: InstanceInfo[];
  /** This host's coordinate, when the nucleus knows it. */
  readonly source: CoordinateValue | undefined;
  /** Stops listening; the watcher stops with its last subscriber. */
  unsubscribe(): void;
}

/** Longest a `watch` call waits for a change before answering with the same state. */
const WATCH_WAIT_MS = 30_000;
/** Pause before asking again after a failed `watch` (nucleus down or restarting). */
const WATCH_RETRY_MS = 500;
/** How long the first `discover` of a `connect()` may take before the socket fallback. */
const DISCOVER_TIMEOUT_MS = 2000;

const WATCHERS = new Map<string, CellWatcher>();

/** Instances a client should send calls to: healthy ones, and ones registered moments ago. */
function usable(instances: InstanceInfo[]): InstanceInfo[] {
  return instances.filter((i) => i.health === "healthy" || i.health === "starting");
}

function unrefSleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    Deno.unrefTimer(timer);
  });
}

class CellWatcher {
  readonly #key: string;
  readonly #cell: string;
  readonly #caller: NucleusCaller;
  readonly #listeners = new Set<InstancesListener>();
  readonly #stop = new AbortController();
  #running = false;
  #version: number;
  instances: InstanceInfo[];
  source: CoordinateValue | undefined;

  constructor(key: string, cell: string, caller: NucleusCaller, first: Infer<typeof Instances>) {
    this.#key = key;
    this.#cell = cell;
    this.#caller = caller;
    this.#version = first.version;
    this.instances = usable(first.instances);
    this.source = first.coordinate;
  }

  subscribe(listener: InstancesListener): Subscription {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1 && !this.#running) this.#run();
    return {
      instances: this.instances,
      source: this.source,
      unsubscribe: () => {
        this.#listeners.delete(listener);
        if (this.#listeners.size === 0) this.#close();
      },
    };
  }

  async #run(): Promise<void> {
    this.#running = true;
    const signal = this.#stop.signal;
    let resync = false;
    while (!signal.aborted) {
      try {
        // After a failure the nucleus may have restarted, its versions starting over: ask
        // for the state afresh instead of waiting for a version it may take long to reach.
        const answer = await (resync
          ? this.#caller.call("discover", { cell: this.#cell, all: true }, {
            timeoutMs: DISCOVER_TIMEOUT_MS,
            signal,
          })
          : this.#caller.call(
            "watch",
            { cell: this.#cell, since: this.#version, wait_ms: WATCH_WAIT_MS },
            { timeoutMs: WATCH_WAIT_MS + 5000, signal },
          )) as Infer<typeof Instances>;
        resync = false;
        if (signal.aborted) {
          break;
        }
        if (answer.version === this.#version) {
          continue;
        }
        this.#version = answer.version;
        this.instances = usable(answer.instances);
        this.source = answer.coordinate;
        for (const listener of [...this.#listeners]) {
          listener(this.instances, this.source);
        }
      } catch {
        // The nucleus is down or restarting: keep the last list and ask again shortly.
        resync = true;
        if (!signal.aborted) await unrefSleep(WATCH_RETRY_MS);
      }
    }
    this.#running = false;
  }

  #close(): void {
    if (WATCHERS.get(this.#key) === this) WATCHERS.delete(this.#key);
    this.#stop.abort();
    this.#caller.close();
  }
}

async function nucleusAnswers(home: string | undefined): Promise<boolean> {
  if (inprocTransport.has(NUCLEUS_CELL)) return true;
  try {
    return (await Deno.lstat(socketPath(NUCLEUS_CELL, home))).isSocket === true;
  } catch {
    return false;
  }
}

/**
 * Subscribes to the instances of `cell` the nucleus knows, or resolves `undefined` when there is
 * no nucleus, it does not answer, or it knows no usable instance (the caller then falls back to
 * the cell's own socket). Never throws.
 */
export async function subscribeInstances(
  cell: string,
  home: string | undefined,
  makeCaller: () => NucleusCaller,
  listener: InstancesListener,
): Promise<Subscription | undefined> {
  if (cell === NUCLEUS_CELL || Deno.env.get("CELL_NUCLEUS") === "0") return undefined;
  const key = `${home ?? ""}\0${cell}`;
  const shared = WATCHERS.get(key);
  if (shared && shared.instances.length > 0) return shared.subscribe(listener);
  if (!(await nucleusAnswers(home))) return undefined;
  const caller = makeCaller();
  let first: Infer<typeof Instances>;
  try {
    first = await caller.call("discover", { cell, all: true }, {
      timeoutMs: DISCOVER_TIMEOUT_MS,
    }) as Infer<typeof Instances>;
  } catch {
    await caller.close();
    return undefined;
  }
  const again = WATCHERS.get(key); // another connect() may have won the race
  if (again && again.instances.length > 0) {
    await caller.close();
    return again.subscribe(listener);
  }
  const watcher = new CellWatcher(key, cell, caller, first);
  if (watcher.instances.length === 0) {
    await caller.close();
    return undefined;
  }
  WATCHERS.set(key, watcher);
  return watcher.subscribe(listener);
}

/** Where a client found its cell. */
export interface Found {
  targets: Target[];
  /** The ring transport, when this process can use it. */
  shm: Transport | undefined;
  /** The nucleus's instances of the cell, followed. */
  subscription: Subscription | undefined;
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

function ringUnavailable(): never {
  throw new CellError(
    "FAILED_PRECONDITION",
    "The shared-memory ring cannot be used in this process: it needs Linux, --allow-ffi, a C " +
      "compiler to build its library (or CELL_RING_LIB), and CELL_SHM not set to 0. " +
      'Connect with transport "uds" instead',
  );
}

/**
 * Finds the cell `cell`: at `address` when given; served in this process; over the ring beside
 * its socket when the ring is asked for; the instances the nucleus knows (followed by
 * `listener`); else its socket `run/<cell>.sock`, through the ring first when this process can
 * use it and the cell serves it.
 */
export async function resolveTargets(
  cell: string,
  options: Pick<ConnectOptions, "address" | "transport" | "home">,
  makeCaller: () => NucleusCaller,
  listener: InstancesListener,
): Promise<Found> {
  const named = options.transport;
  const transport = typeof named === "object"
    ? named
    : named === "inproc"
    ? inprocTransport
    : named === "uds"
    ? udsTransport
    : named === "shm"
    ? await loadShm() ?? ringUnavailable()
    : undefined;
  const only = (key: string, route: Route) => ({
    targets: [new Target(key, [route])],
    shm: undefined,
    subscription: undefined,
  });
  if (options.address !== undefined) {
    return only(options.address, {
      transport: transport ?? udsTransport,
      address: options.address,
    });
  }
  if (transport === inprocTransport || (!transport && inprocTransport.has(cell))) {
    return only(cell, { transport: inprocTransport, address: cell });
  }
  const socket = socketPath(cell, options.home);
  if (transport?.name === "shm") {
    // The ring asked for: the one beside the cell's socket (a ring address is not a socket's).
    return only(shmAddress(socket), { transport, address: shmAddress(socket) });
  }
  const shm = transport ? undefined : await loadShm();
  if (!transport || transport === udsTransport) {
    const subscription = await subscribeInstances(cell, options.home, makeCaller, listener);
    if (subscription) {
      const targets = mergeInstances([], subscription.instances, shm, () => {});
      if (targets.length > 0) return { targets, shm, subscription };
      subscription.unsubscribe(); // none this process can reach
    }
  }
  const routes: Route[] = [];
  if (shm && await exists(shmAddress(socket))) {
    routes.push({ transport: shm, address: shmAddress(socket) });
  }
  routes.push({ transport: transport ?? udsTransport, address: socket });
  return { targets: [new Target(socket, routes)], shm, subscription: undefined };
}
