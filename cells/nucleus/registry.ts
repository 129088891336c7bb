/**
 * The nucleus's registry: which instances of which cells run, their leases and health, and a
 * version that blocking queries wait on. Pure logic: time comes from an injected
 * {@linkcode Clock}, so tests can drive heartbeats and expiry without waiting.
 *
 * @module
 */
import { CellError, checkCellName, type Infer } from "@cell/sdk";
import {
  type Coordinate,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_MISSED_HEARTBEATS,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type Instance,
  type Instances,
  type Lease,
  type RegisterRequest,
} from "@cell/sdk/nucleus_api";
import { type Clock, systemClock } from "./clock.ts";
import { checkRegistration } from "./_limits.ts";
import { checkCoordinate, movedFar } from "./_coordinate.ts";

/** One registered instance, as the nucleus answers it. */
export type InstanceInfo = Infer<typeof Instance>;

/** Options of {@linkcode Registry}. */
export interface RegistryOptions {
  /** This nucleus's node id: registrations with an empty `node_id` get it. */
  nodeId: string;
  /**
   * Heartbeat interval handed out with every lease (ms).
   * @default {1000}
   */
  heartbeatIntervalMs?: number;
  /**
   * Intervals without a heartbeat after which an instance expires.
   * @default {3}
   */
  maxMissed?: number;
  /**
   * Where time comes from.
   * @default {systemClock}
   */
  clock?: Clock;
  /**
   * Registered instances at most; more registrations fail with `RESOURCE_EXHAUSTED`.
   * @default {100000}
   */
  maxInstances?: number;
  /** Told of each instance that expires for want of heartbeats. */
  onExpire?: (instance: InstanceInfo) => void;
}

/** Options of {@linkcode Registry.watch}. */
export interface WatchOptions {
  /** Longest wait before answering with the unchanged state (ms). */
  waitMs: number;
  /** Answers at once with the current state when aborted. */
  signal?: AbortSignal;
}

/** Proteins' inferred types are read-only; the registry updates its own copies in place. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Entry {
  instance: Mutable<InstanceInfo>;
  leaseId: string;
  /** The coordinate watchers were last told of. */
  announced?: Infer<typeof Coordinate> | undefined;
}

interface Watcher {
  cell: string;
  since: number;
  timer: number;
  done: () => void;
}

const badRequest = (message: string) => new CellError("INVALID_ARGUMENT", message);

/**
 * Registered instances, by cell, with leases kept alive by heartbeats.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManualClock, Registry } from "@cell/nucleus";
 *
 * const clock = new ManualClock(1_000);
 * const registry = new Registry({ nodeId: "1", clock, heartbeatIntervalMs: 100, maxMissed: 3 });
 * const lease = registry.register({ cell: "my-service", node_id: "", endpoints: [], pid: 42 });
 * registry.heartbeat({ lease_id: lease.lease_id });
 * assert.ok(registry.discover("my-service").instances.length === 1);
 * clock.tick(1_000); // no heartbeats: expired, then removed
 * assert.ok(registry.discover("my-service", true).instances.length === 0);
 * registry.close();
 * ```
 */
export class Registry {
  /** This nucleus's node id. */
  readonly nodeId: string;
  /** Heartbeat interval handed out with leases (ms). */
  readonly heartbeatIntervalMs: number;
  /** Intervals without a heartbeat after which an instance expires. */
  readonly maxMissed: number;
  readonly #clock: Clock;
  readonly #maxInstances: number;
  readonly #onExpire: ((instance: InstanceInfo) => void) | undefined;
  readonly #byId = new Map<string, Entry>();
  readonly #byLease = new Map<string, Entry>();
  readonly #byCell = new Map<string, Map<string, Entry>>();
  readonly #cellVersion = new Map<string, number>();
  readonly #watchers = new Map<string, Set<Watcher>>();
  #version = 1;
  #host: Infer<typeof Coordinate> | undefined;
  #hostAnnounced: Infer<typeof Coordinate> | undefined;
  #sweepTimer: number | undefined;
  #closed = false;

  /** Creates an empty registry and starts its expiry sweep. */
  constructor(options: RegistryOptions) {
    const interval = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const maxMissed = options.maxMissed ?? DEFAULT_MAX_MISSED_HEARTBEATS;
    if (!Number.isSafeInteger(interval) || interval < 1 || interval > 0xffff_ffff) {
      throw new RangeError(`heartbeatIntervalMs must be a positive integer, not ${interval}`);
    }
    if (!Number.isSafeInteger(maxMissed) || maxMissed < 1 || maxMissed > 1000) {
      throw new RangeError(`maxMissed must be an integer from 1 to 1000, not ${maxMissed}`);
    }
    this.nodeId = options.nodeId;
    this.heartbeatIntervalMs = interval;
    this.maxMissed = maxMissed;
    this.#clock = options.clock ?? systemClock;
    this.#maxInstances = options.maxInstances ?? 100_000;
    this.#onExpire = options.onExpire;
    this.#scheduleSweep();
  }

  /** The registry's version: it grows with every change. */
  get version(): number {
    return this.#version;
  }

  /** How many instances are registered, expired ones included. */
  get size(): number {
    return this.#byId.size;
  }

  /**
   * Registers an instance and grants it a lease. An `instance_id` already registered by a live
   * instance is refused with `ALREADY_EXISTS`, unless it is the same process registering again
   * (after a nucleus restart or a lost lease), which replaces the old registration.
   */
  register(request: Infer<typeof RegisterRequest>): Infer<typeof Lease> {
    this.#checkOpen();
    try {
      checkCellName(request.cell);
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    checkRegistration(request);
    const nodeId = request.node_id === "" ? this.nodeId : request.node_id;
    let instanceId = request.instance_id ?? "";
    const existing = instanceId === "" ? undefined : this.#byId.get(instanceId);
    if (existing) {
      const old = existing.instance;
      const sameProcess = old.pid === request.pid && old.node_id === nodeId &&
        old.cell === request.cell;
      if (!sameProcess && old.health !== "expired") {
        throw new CellError(
          "ALREADY_EXISTS",
          `Instance id '${instanceId}' is already registered by '${old.cell}' (pid ${old.pid}` +
            ` on node ${old.node_id}): pick another CELL_INSTANCE_ID, or leave it empty for ` +
            "the nucleus to choose one",
        );
      }
      this.#remove(existing);
    } else if (this.#byId.size >= this.#maxInstances) {
      throw new CellError(
        "RESOURCE_EXHAUSTED",
        `The nucleus holds ${this.#byId.size} instances, its limit: deregister some first`,
      );
    }
    if (instanceId === "") instanceId = this.#newInstanceId(request.cell);
    const now = this.#clock.now();
    const entry: Entry = {
      leaseId: crypto.randomUUID(),
      instance: {
        cell: request.cell,
        node_id: nodeId,
        instance_id: instanceId,
        endpoints: request.endpoints.map((e) => ({ ...e })),
        pid: request.pid,
        metadata: { ...request.metadata },
        health: "starting",
        registered_at_ms: now,
        last_heartbeat_ms: now,
        in_flight: 0,
      },
    };
    this.#byId.set(instanceId, entry);
    this.#byLease.set(entry.leaseId, entry);
    let cell = this.#byCell.get(request.cell);
    if (!cell) this.#byCell.set(request.cell, cell = new Map());
    cell.set(instanceId, entry);
    this.#changed(request.cell);
    return {
      lease_id: entry.leaseId,
      instance_id: instanceId,
      heartbeat_interval_ms: this.heartbeatIntervalMs,
      max_missed: this.maxMissed,
    };
  }

  /**
   * Keeps a lease alive and records the instance's health and load. Fails with `NOT_FOUND`
   * for a lease that is unknown or has expired: the instance must register again.
   */
  heartbeat(request: Infer<typeof HeartbeatRequest>): Infer<typeof HeartbeatResponse> {
    this.#checkOpen();
    const entry = this.#byLease.get(request.lease_id);
    if (!entry || entry.instance.health === "expired") {
      throw new CellError(
        "NOT_FOUND",
        `Lease '${request.lease_id}' is unknown or has expired (the nucleus may have ` +
          "restarted): register again",
      );
    }
    if (request.coordinate) checkCoordinate(request.coordinate);
    const instance = entry.instance;
    instance.last_heartbeat_ms = this.#clock.now();
    instance.in_flight = request.in_flight ?? 0;
    let changed = false;
    if (request.coordinate) {
      instance.coordinate = request.coordinate;
      if (movedFar(entry.announced, request.coordinate)) {
        entry.announced = request.coordinate;
        changed = true;
      }
    }
    const health = request.healthy === false ? "unhealthy" : "healthy";
    if (instance.health !== health) {
      instance.health = health;
      changed = true;
    }
    if (changed) this.#changed(instance.cell);
    return { heartbeat_interval_ms: this.heartbeatIntervalMs };
  }

  /** This host's coordinate, as its Vivaldi cell last set it. */
  get hostCoordinate(): Infer<typeof Coordinate> | undefined {
    return this.#host;
  }

  /**
   * Sets this host's coordinate, answered with every `discover` and `watch`; watchers hear of
   * it when it moved far enough to matter.
   */
  setHostCoordinate(coordinate: Infer<typeof Coordinate>): void {
    this.#checkOpen();
    checkCoordinate(coordinate);
    this.#host = coordinate;
    if (movedFar(this.#hostAnnounced, coordinate)) {
      this.#hostAnnounced = coordinate;
      this.#changed(undefined);
    }
  }

  /** Removes the instance holding `leaseId`; an unknown lease is not an error. */
  deregister(leaseId: string): boolean {
    const entry = this.#byLease.get(leaseId);
    if (entry) this.#remove(entry);
    return entry !== undefined;
  }

  /**
   * Removes an instance by id (and cell, when given), for example when its process exits;
   * `false` if there is no such instance.
   */
  removeInstance(instanceId: string, cell?: string): boolean {
    const entry = this.#byId.get(instanceId);
    if (!entry || (cell !== undefined && entry.instance.cell !== cell)) return false;
    this.#remove(entry);
    return true;
  }

  /** Healthy instances of `cell` (every cell when empty); all of them with `all`. */
  discover(cell: string, all = false): Infer<typeof Instances> {
    const entries = cell === "" ? this.#byId.values() : this.#byCell.get(cell)?.values() ?? [];
    const instances: InstanceInfo[] = [];
    for (const { instance } of entries) {
      if (all || instance.health === "healthy") instances.push({ ...instance });
    }
    const host = this.#host;
    return host ? { version: this.#version, instances, coordinate: host } : {
      version: this.#version,
      instances,
    };
  }

  /** Every instance, expired ones included, as copies. */
  instances(): InstanceInfo[] {
    return this.discover("", true).instances;
  }

  /**
   * A blocking query: answers like {@linkcode Registry.discover} as soon as `cell` (every cell
   * when empty) changes past version `since`, or after `waitMs` with the unchanged state.
   * `since` 0, or one greater than the current version (from before a restart), answers at once.
   */
  watch(cell: string, since: number, options: WatchOptions): Promise<Infer<typeof Instances>> {
    this.#checkOpen();
    const changedAt = cell === "" ? this.#version : this.#cellVersion.get(cell) ?? 0;
    // A `since` from the future comes from before a nucleus restart: the client's view is stale.
    const stale = since === 0 || since > this.#version || changedAt > since;
    if (stale || options.signal?.aborted || options.waitMs <= 0) {
      return Promise.resolve(this.discover(cell));
    }
    return new Promise((resolve) => {
      const watcher: Watcher = {
        cell,
        since,
        timer: 0,
        done: () => {
          this.#clock.clearTimeout(watcher.timer);
          options.signal?.removeEventListener("abort", watcher.done);
          const set = this.#watchers.get(cell);
          set?.delete(watcher);
          if (set?.size === 0) this.#watchers.delete(cell);
          resolve(this.discover(cell));
        },
      };
      watcher.timer = this.#clock.setTimeout(watcher.done, options.waitMs);
      options.signal?.addEventListener("abort", watcher.done, { once: true });
      let set = this.#watchers.get(cell);
      if (!set) this.#watchers.set(cell, set = new Set());
      set.add(watcher);
    });
  }

  /** Watchers waiting right now. */
  get watching(): number {
    let n = 0;
    for (const set of this.#watchers.values()) n += set.size;
    return n;
  }

  /**
   * Expires instances that missed `maxMissed` heartbeats, and removes those expired for one
   * more interval. Runs by itself every half interval; call it to sweep now.
   */
  sweep(): void {
    const now = this.#clock.now();
    const expireAfter = this.heartbeatIntervalMs * this.maxMissed;
    const removeAfter = expireAfter + this.heartbeatIntervalMs;
    for (const entry of [...this.#byId.values()]) {
      const silent = now - entry.instance.last_heartbeat_ms;
      if (silent >= removeAfter) {
        this.#remove(entry);
      } else if (silent >= expireAfter && entry.instance.health !== "expired") {
        entry.instance.health = "expired";
        this.#byLease.delete(entry.leaseId);
        this.#changed(entry.instance.cell);
        this.#onExpire?.({ ...entry.instance });
      }
    }
  }

  /** Stops the sweep and answers every waiting watcher with the current state. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    for (const set of [...this.#watchers.values()]) for (const w of [...set]) w.done();
  }

  #scheduleSweep(): void {
    const period = Math.max(5, Math.floor(this.heartbeatIntervalMs / 2));
    this.#sweepTimer = this.#clock.setTimeout(() => {
      this.sweep();
      if (!this.#closed) this.#scheduleSweep();
    }, period);
  }

  #remove(entry: Entry): void {
    const { cell, instance_id } = entry.instance;
    if (this.#byId.get(instance_id) !== entry) return;
    this.#byId.delete(instance_id);
    this.#byLease.delete(entry.leaseId);
    const byCell = this.#byCell.get(cell);
    byCell?.delete(instance_id);
    if (byCell?.size === 0) this.#byCell.delete(cell);
    this.#changed(cell);
  }

  /** Wakes the watchers of `cell`, or of every cell when `undefined` (the host moved). */
  #changed(cell: string | undefined): void {
    this.#version++;
    if (cell !== undefined) this.#cellVersion.set(cell, this.#version);
    for (const key of cell === undefined ? [...this.#watchers.keys()] : [cell, ""]) {
      const set = this.#watchers.get(key);
      if (set) {
        for (const watcher of [...set]) if (this.#version > watcher.since) watcher.done();
      }
    }
  }

  #newInstanceId(cell: string): string {
    for (;;) {
      // At most 64 characters, as instance ids must be (they name sockets).
      const id = `${cell.slice(0, 55)}-${crypto.randomUUID().slice(0, 8)}`;
      if (!this.#byId.has(id)) return id;
    }
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new CellError("UNAVAILABLE", "The nucleus is shutting down: try again shortly");
    }
  }
}
