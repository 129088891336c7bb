// The instances a client may send a call to, and which one gets the next call.
import type { Transport } from "./transport.ts";
import { udsTransport } from "./uds.ts";
import type { Session } from "./_client_session.ts";
import type { InstanceInfo } from "./_discovery.ts";

/** How a client spreads calls over the instances of a cell. */
export type Balance = "least-outstanding" | "round-robin";

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
  #turn = 0;

  constructor(policy: Balance) {
    if (policy !== "least-outstanding" && policy !== "round-robin") {
      throw new TypeError(
        `Unknown balance ${JSON.stringify(policy)}: use "least-outstanding" or "round-robin"`,
      );
    }
    this.policy = policy;
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
