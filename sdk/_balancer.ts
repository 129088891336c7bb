// The instances a client may send a call to, and which one gets the next call.
import type { Transport } from "./transport.ts";
import { udsTransport } from "./uds.ts";
import type { Session } from "./_client_session.ts";
import type { InstanceInfo } from "./_discovery.ts";
import { type CoordinateValue, estimateRtt } from "./nucleus_api.ts";

/** How a client spreads calls over the instances of a cell. */
export type Balance = "least-outstanding" | "round-robin" | "nearest";

const BALANCES: readonly Balance[] = ["least-outstanding", "round-robin", "nearest"];

/** `nearest` spreads calls over this many of the nearest instances. */
export const NEAREST_K = 3;
/** How often `nearest` ranks the instances again (ms): ranking is O(n log n), picking O(k). */
const RANK_MS = 200;
/** RTT samples older than this are forgotten (ms), so an instance not called lately is tried again. */
const SAMPLE_TTL_MS = 10_000;
/**
 * Latency samples per instance whose minimum counts: queueing and handler time only ever add
 * to the network's RTT, so the smallest recent sample is the best estimate of it (as TCP's min-RTT).
 */
const FILTER_SIZE = 8;

/** How long an instance that failed with `UNAVAILABLE` gets no new calls (unless all are down). */
export const DOWN_MS = 1500;

/** One way to reach an instance. */
export interface Route {
  transport: Transport;
  address: string;
}

/** One instance (or the one socket) a client can talk to. */
export class Target {
  /** The nucleus's instance id, or the address when the target was not discovered. */
  readonly key: string;
  readonly instanceId: string | undefined;
  /** Routes to dial, best first (shared memory before the Unix socket). */
  routes: Route[];
  /** What the nucleus said about it, to notice that it changed (restarted, moved). */
  fingerprint: string;
  /** The route of the current session. */
  route: Route;
  session: Session | undefined;
  connecting: Promise<Session> | undefined;
  /** Calls waiting for the session to be opened. */
  waiting = 0;
  /** No new calls before this time (ms since the epoch). */
  downUntil = 0;
  /** Removed by discovery: drains, gets no new calls. */
  removed = false;
  /** Its network coordinate, from the nucleus. */
  coordinate: CoordinateValue | undefined;
  /** Estimated RTT in seconds as `nearest` last ranked it (NaN when unknown). */
  score = NaN;
  readonly #samples: number[] = [];
  #sampleAt = 0;

  constructor(key: string, routes: Route[], instanceId?: string, fingerprint = "") {
    if (routes.length === 0) throw new RangeError(`No usable route to '${key}'`);
    this.key = key;
    this.routes = routes;
    this.route = routes[0]!;
    this.instanceId = instanceId;
    this.fingerprint = fingerprint;
  }

  /** Calls sent and not answered yet, plus those waiting for the connection. */
  get outstanding(): number {
    return (this.session?.pending.size ?? 0) + this.waiting;
  }

  /** Records one observed round trip of a call (seconds): O(1), for the `nearest` balance. */
  recordRtt(seconds: number, now: number = Date.now()): void {
    if (!(seconds > 0 && seconds < 60)) return;
    const samples = this.#samples;
    if (samples.length >= FILTER_SIZE) samples.shift();
    samples.push(seconds);
    this.#sampleAt = now;
  }

  /**
   * The RTT `nearest` ranks by (seconds): the least of the last calls' latencies when there
   * are recent ones, else the estimate from `source`'s and this instance's coordinates.
   */
  rtt(source: CoordinateValue | undefined, now: number): number | undefined {
    const samples = this.#samples;
    if (samples.length > 0 && now - this.#sampleAt > SAMPLE_TTL_MS) samples.length = 0;
    if (samples.length > 0) return Math.min(...samples);
    const c = this.coordinate;
    if (!source || !c || c.vec.length !== source.vec.length) return undefined;
    const rtt = estimateRtt(source, c);
    return Number.isFinite(rtt) && rtt > 0 ? rtt : undefined;
  }

  /** A session new calls can use right now, if any. */
  get ready(): Session | undefined {
    const s = this.session;
    return s && !s.conn.closed && !s.draining ? s : undefined;
  }
}

/** Picks targets by policy, skipping those marked down while others are up. */
export class Balancer {
  readonly policy: Balance;
  targets: Target[] = [];
  /** Where this client stands (its host's coordinate), for `nearest`. */
  source: CoordinateValue | undefined;
  #turn = 0;
  /** `nearest`: targets by RTT, or `undefined` when no RTT is known (least-outstanding then). */
  #ranked: Target[] | undefined;
  #rankedAt = -Infinity;
  #rankedFor: Target[] | undefined;
  #rankedFrom: CoordinateValue | undefined;
  readonly #window: Target[] = [];

  constructor(policy: Balance) {
    if (!BALANCES.includes(policy)) {
      throw new TypeError(
        `Unknown balance ${JSON.stringify(policy)}: use ${
          BALANCES.map((b) => `"${b}"`).join(", ")
        }`,
      );
    }
    this.policy = policy;
  }

  /** Whether calls' latencies should be recorded with {@linkcode Target.recordRtt}. */
  get measures(): boolean {
    return this.policy === "nearest";
  }

  /** The next target; `undefined` only when there is none at all. */
  pick(now: number = Date.now()): Target | undefined {
    const targets = this.targets;
    const n = targets.length;
    if (n <= 1) return targets[0];
    const turn = this.#turn++;
    if (this.#turn >= 0x3fffffff) this.#turn = 0;
    if (this.policy === "round-robin") {
      for (let i = 0; i < n; i++) {
        const t = targets[(turn + i) % n]!;
        if (t.downUntil <= now) return t;
      }
      return this.#soonestUp();
    }
    if (this.policy === "nearest") {
      const t = this.#nearest(turn, now);
      if (t) return t;
    }
    // The fewest outstanding calls; equals take turns.
    let least = Infinity;
    let ties = 0;
    for (const t of targets) {
      if (t.downUntil > now) continue;
      const load = t.outstanding;
      if (load < least) {
        least = load;
        ties = 1;
      } else if (load === least) {
        ties++;
      }
    }
    if (ties === 0) return this.#soonestUp();
    let k = turn % ties;
    for (const t of targets) {
      if (t.downUntil <= now && t.outstanding === least && k-- === 0) return t;
    }
    return this.#soonestUp();
  }

  /**
   * Among the `NEAREST_K` nearest targets that are up, the one with the lowest RTT × (calls in
   * flight + 1), an estimate of how long a new call would take there: the nearest one takes
   * the calls until it is loaded enough for the next nearest to answer sooner. Equals take
   * turns. `undefined` when no target's RTT is known.
   */
  #nearest(turn: number, now: number): Target | undefined {
    if (
      now - this.#rankedAt >= RANK_MS || this.#rankedFor !== this.targets ||
      this.#rankedFrom !== this.source
    ) {
      this.#rank(now);
    }
    const ranked = this.#ranked;
    if (!ranked) return undefined;
    const window = this.#window;
    window.length = 0;
    for (const t of ranked) {
      if (t.downUntil > now || t.removed) continue;
      window.push(t);
      if (window.length >= NEAREST_K) break;
    }
    const m = window.length;
    let best: Target | undefined;
    let bestCost = Infinity;
    for (let i = 0; i < m; i++) {
      const t = window[(turn + i) % m]!;
      const cost = t.score * (t.outstanding + 1);
      if (cost < bestCost) {
        best = t;
        bestCost = cost;
      }
    }
    return best;
  }

  #rank(now: number): void {
    this.#rankedAt = now;
    this.#rankedFor = this.targets;
    this.#rankedFrom = this.source;
    let best = Infinity;
    for (const t of this.targets) {
      t.score = t.rtt(this.source, now) ?? NaN;
      if (t.score < best) best = t.score;
    }
    if (best === Infinity) {
      this.#ranked = undefined;
      return;
    }
    // Unknown ones rank with the nearest known: they get a call soon, and then are measured.
    for (const t of this.targets) if (Number.isNaN(t.score)) t.score = best;
    this.#ranked = [...this.targets].sort((a, b) => a.score - b.score);
  }

  /** Everything is down: the one that went down first is the best bet. */
  #soonestUp(): Target {
    let soonest = this.targets[0]!;
    for (const t of this.targets) if (t.downUntil < soonest.downUntil) soonest = t;
    return soonest;
  }

  /** Whether a target other than `except` could take a call now. */
  hasOtherUp(except: Target | undefined, now: number = Date.now()): boolean {
    return this.targets.some((t) => t !== except && t.downUntil <= now);
  }
}

/** The routes a client can use to reach `instance`, best first. */
export function routesOf(instance: InstanceInfo, shm: Transport | undefined): Route[] {
  const routes: Route[] = [];
  for (const e of instance.endpoints) {
    if (e.transport === "shm" && shm) routes.push({ transport: shm, address: e.address });
    if (e.transport === "uds") routes.push({ transport: udsTransport, address: e.address });
  }
  return routes;
}

const addresses = (routes: Route[]) => routes.map((r) => r.address).join(",");

/**
 * The targets after the nucleus reported `instances`: known ones keep their sessions (and are
 * up again when they changed), new ones join, the others are `drain`ed. An empty list changes
 * nothing: a nucleus that just restarted knows no instance until they register again (within
 * a heartbeat interval), and when they are really gone calling them fails all the same.
 */
export function mergeInstances(
  current: Target[],
  instances: InstanceInfo[],
  shm: Transport | undefined,
  drain: (t: Target) => void,
): Target[] {
  const old = new Map(current.map((t) => [t.key, t]));
  const next: Target[] = [];
  for (const instance of instances) {
    const routes = routesOf(instance, shm);
    if (routes.length === 0) continue;
    const fingerprint = `${instance.pid}/${instance.registered_at_ms}/${addresses(routes)}`;
    let t = old.get(instance.instance_id);
    if (t?.instanceId === undefined) {
      t = new Target(instance.instance_id, routes, instance.instance_id, fingerprint);
    } else {
      old.delete(t.key);
      if (t.fingerprint !== fingerprint) {
        // Restarted or moved: whatever marked it down is stale; a new address needs a new session.
        if (addresses(t.routes) !== addresses(routes)) drain(t);
        t.fingerprint = fingerprint;
        t.routes = routes;
        t.downUntil = 0;
      }
    }
    t.coordinate = instance.coordinate;
    next.push(t);
  }
  if (next.length === 0) return current;
  for (const gone of current) {
    if (!next.includes(gone)) {
      gone.removed = true;
      drain(gone);
    }
  }
  return next;
}
