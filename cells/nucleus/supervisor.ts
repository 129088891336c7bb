/**
 * The lifecycle half of the nucleus: starts, supervises, scales and stops the processes of
 * deployed cells, persists the desired state, and adopts live instances after a restart.
 *
 * @module
 */
import { CellError, checkCellName, ensurePrivateDir, type Infer, runDir } from "@cell/sdk";
import type { Deployment, DeployRequest, LogLine, LogsRequest } from "@cell/sdk/nucleus_api";
import { Instance, type InstanceHost, type InstanceTiming } from "./instance.ts";
import { readLogs } from "./logs.ts";
import { loadManifest, resolveModule } from "./manifest.ts";
import { findBwrap, type LaunchPlan, launchPlan, sandboxProblem } from "./sandbox.ts";
import {
  type DeploymentRecord,
  isSameProcess,
  type NucleusState,
  StateStore,
  type StateWriter,
} from "./state.ts";

/** Most instances one deployment may run on one host. */
export const MAX_INSTANCES = 32;

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** The Cell home: state in `nucleus/`, logs in `logs/`, data in `data/`, sockets in `run/`. */
  home: string;
  /** This host's node id, handed to every instance as `CELL_NODE_ID`. */
  nodeId: string;
  /** Called when an instance's process exits (crash, kill or stop), to deregister it. */
  onInstanceExit?: (cell: string, instanceId: string) => void;
  /**
   * Where the supervisor reports what it does.
   * @default {nothing}
   */
  log?: (message: string) => void;
  /** Restart and stop timing; see {@linkcode InstanceTiming}. */
  timing?: Partial<InstanceTiming>;
  /**
   * How the state file is written (tests inject a failing writer).
   * @default {write, fsync, rename, fsync the directory}
   */
  stateWriter?: StateWriter;
}

/** Default {@linkcode InstanceTiming}. */
export const DEFAULT_TIMING: Readonly<InstanceTiming> = Object.freeze({
  startWindowMs: 2000,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  stopGraceMs: 5000,
  pollMs: 250,
});

interface Managed {
  record: DeploymentRecord;
  used: "bwrap" | "none";
  instances: Instance[];
}

/**
 * Starts and supervises the processes of deployed cells. Each deployment runs `instances`
 * slots named `<cell>-0`, `<cell>-1`, ...; each slot's process is restarted with exponential
 * backoff when it exits. The desired state and the live processes are persisted in
 * `<home>/nucleus/state.json`, so that a restarted supervisor adopts the processes still alive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Supervisor } from "@cell/nucleus";
 * const home = await Deno.makeTempDir({ dir: "/tmp", prefix: "cell-" });
 * const supervisor = new Supervisor({ home, nodeId: "1" });
 * await supervisor.start();
 * const module = `${home}/hello.ts`;
 * await Deno.writeTextFile(module, "console.log('hello'); setInterval(() => {}, 1000);");
 * const deployment = await supervisor.deploy({ cell: "hello", module, instances: 2 });
 * assert.ok(deployment.status[1]?.instance_id === "hello-1");
 * await supervisor.stop("hello");
 * await supervisor.shutdown({ stopInstances: true });
 * await Deno.remove(home, { recursive: true });
 * ```
 */
export class Supervisor {
  readonly #home: string;
  readonly #nodeId: string;
  readonly #store: StateStore;
  readonly #deployments = new Map<string, Managed>();
  readonly #onExit: (cell: string, instanceId: string) => void;
  readonly #log: (message: string) => void;
  readonly #host: InstanceHost;
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Creates a supervisor; nothing runs until {@linkcode Supervisor.start}. */
  constructor(options: SupervisorOptions) {
    this.#home = options.home;
    this.#nodeId = options.nodeId;
    this.#store = new StateStore(options.home, { writer: options.stateWriter });
    this.#onExit = options.onInstanceExit ?? (() => {});
    this.#log = options.log ?? (() => {});
    this.#host = {
      home: options.home,
      timing: { ...DEFAULT_TIMING, ...options.timing },
      plan: (instance) => this.#plan(instance),
      changed: () => void this.#persistQuietly(),
      exited: (instance) => this.#onExit(instance.cell, instance.id),
      log: (message) => this.#log(message),
    };
  }

  /** Loads the persisted desired state and adopts or restarts its instances. */
  start(): Promise<void> {
    return this.#exclusive(async () => {
      const state = await this.#store.load();
      for (const record of state.deployments) {
        const managed: Managed = { record, used: this.#sandboxUsed(record.sandbox), instances: [] };
        this.#deployments.set(record.cell, managed);
        for (let n = 0; n < record.instances; n++) {
          const instance = new Instance(this.#host, record.cell, `${record.cell}-${n}`);
          managed.instances.push(instance);
          const previous = state.instances.find((i) => i.instance_id === instance.id);
          if (previous && await instance.adopt(previous)) {
            this.#log(`${instance.id} (pid ${previous.pid}) adopted`);
          } else {
            await instance.start();
          }
        }
      }
      // Processes of deployments that no longer want them (stopped while a nucleus was down).
      for (const old of state.instances) {
        const wanted = this.#deployments.get(old.cell)?.instances.some((i) =>
          i.id === old.instance_id && i.record()?.pid === old.pid
        );
        if (!wanted && isSameProcess(old.pid, old.start_time, old.instance_id)) {
          this.#log(`${old.instance_id} (pid ${old.pid}) is no longer wanted: stopping it`);
          try {
            Deno.kill(old.pid, "SIGKILL");
          } catch {
            // Gone meanwhile.
          }
        }
      }
      await this.#persistQuietly();
    });
  }

  /** Starts `instances` supervised processes of a cell module. */
  deploy(request: Infer<typeof DeployRequest>): Promise<Infer<typeof Deployment>> {
    return this.#exclusive(async () => {
      checkName(request.cell);
      checkCount(request.instances, 1);
      const module = await resolveModule(request.module);
      const sandbox = request.sandbox !== false;
      const problem = sandbox ? await sandboxProblem() : undefined;
      if (problem) {
        throw new CellError(
          "FAILED_PRECONDITION",
          `bubblewrap is installed but cannot sandbox here (${problem}): allow unprivileged ` +
            "user namespaces (kernel.unprivileged_userns_clone=1, or on Ubuntu " +
            "kernel.apparmor_restrict_unprivileged_userns=0), or deploy with --no-sandbox",
        );
      }
      const args = request.args ?? [];
      const existing = this.#deployments.get(request.cell);
      if (existing) {
        const same = existing.record.module === module && existing.record.sandbox === sandbox &&
          JSON.stringify(existing.record.args) === JSON.stringify(args);
        if (!same) {
          throw new CellError(
            "ALREADY_EXISTS",
            `Cell '${request.cell}' is already deployed from '${existing.record.module}': ` +
              `stop it first (\`cell stop ${request.cell}\`), or scale it (\`cell scale\`)`,
          );
        }
        return await this.#scale(existing, request.instances);
      }
      const manifest = await loadManifest(module);
      if (manifest.name !== undefined && manifest.name !== request.cell) {
        throw new CellError(
          "INVALID_ARGUMENT",
          `The manifest of '${module}' names the cell '${manifest.name}', not ` +
            `'${request.cell}': deploy it as '${manifest.name}', or fix the manifest`,
        );
      }
      const plan = await this.#launchPlan(request.cell, `${request.cell}-0`, module, args, sandbox);
      const record: DeploymentRecord = {
        cell: request.cell,
        module,
        instances: request.instances,
        sandbox,
        args,
        permissions: plan.permissions,
      };
      // Persist first: if the disk is full, nothing starts and nothing changes.
      const state = this.#snapshot();
      state.deployments.push(record);
      await this.#store.save(state);
      const managed: Managed = { record, used: plan.sandbox, instances: [] };
      this.#deployments.set(record.cell, managed);
      this.#log(`deploying ${record.cell} x${record.instances} from ${module} (${plan.sandbox})`);
      await this.#grow(managed, record.instances);
      await this.#persistQuietly();
      return this.#view(managed);
    });
  }

  /** Changes how many instances a deployed cell runs. */
  scale(cell: string, instances: number): Promise<Infer<typeof Deployment>> {
    return this.#exclusive(() => {
      checkCount(instances, 0);
      return this.#scale(this.#get(cell), instances);
    });
  }

  /** Stops every instance of a cell and forgets its deployment. */
  stop(cell: string): Promise<Infer<typeof Deployment>> {
    return this.#exclusive(async () => {
      const managed = this.#get(cell);
      const state = this.#snapshot();
      state.deployments = state.deployments.filter((d) => d.cell !== cell);
      await this.#store.save(state);
      this.#deployments.delete(cell);
      this.#log(`stopping ${cell}`);
      await Promise.all(managed.instances.map((i) => i.stop()));
      await this.#persistQuietly();
      return this.#view(managed);
    });
  }

  /** Every deployment and the state of its instances. */
  deployments(): Infer<typeof Deployment>[] {
    return [...this.#deployments.values()].map((m) => this.#view(m));
  }

  /** Instances a deployment wants; 0 when the cell is not deployed. */
  desired(cell: string): number {
    return this.#deployments.get(cell)?.record.instances ?? 0;
  }

  /** Captured stdout/stderr lines of a cell's instances, oldest first. */
  async logs(request: Infer<typeof LogsRequest>): Promise<Infer<typeof LogLine>[]> {
    checkName(request.cell);
    const lines = await readLogs(this.#home, request.cell, {
      ...(request.instance_id === undefined ? {} : { instanceId: request.instance_id }),
      ...(request.tail === undefined ? {} : { tail: request.tail }),
    });
    if (lines.length === 0 && !this.#deployments.has(request.cell)) {
      throw new CellError(
        "NOT_FOUND",
        `No logs of cell '${request.cell}': it is not deployed here (see \`cell deployments\`)`,
      );
    }
    return lines;
  }

  /**
   * Stops supervising. With `stopInstances`, stops every instance (the deployments stay
   * persisted, to start again with the next nucleus); without, leaves them running for the
   * next nucleus to adopt.
   */
  shutdown(options: { stopInstances: boolean }): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#exclusive(async () => {
      const all = [...this.#deployments.values()].flatMap((m) => m.instances);
      if (options.stopInstances) await Promise.all(all.map((i) => i.stop()));
      else await Promise.all(all.map((i) => i.release()));
      await this.#persistQuietly();
      this.#closed = true;
    });
  }

  async #scale(managed: Managed, instances: number): Promise<Infer<typeof Deployment>> {
    const previous = managed.record.instances;
    managed.record.instances = instances;
    try {
      await this.#store.save(this.#snapshot());
    } catch (e) {
      managed.record.instances = previous;
      throw e;
    }
    this.#log(`scaling ${managed.record.cell} from ${previous} to ${instances}`);
    if (instances > managed.instances.length) await this.#grow(managed, instances);
    const surplus = managed.instances.splice(instances);
    await Promise.all(surplus.map((i) => i.stop()));
    await this.#persistQuietly();
    return this.#view(managed);
  }

  async #grow(managed: Managed, instances: number): Promise<void> {
    const started: Promise<void>[] = [];
    for (let n = managed.instances.length; n < instances; n++) {
      const instance = new Instance(this.#host, managed.record.cell, `${managed.record.cell}-${n}`);
      managed.instances.push(instance);
      started.push(instance.start());
    }
    await Promise.all(started);
  }

  async #plan(instance: Instance): Promise<LaunchPlan> {
    const record = this.#deployments.get(instance.cell)?.record;
    if (!record) throw new Error(`Cell '${instance.cell}' is no longer deployed`);
    return await this.#launchPlan(
      record.cell,
      instance.id,
      record.module,
      record.args,
      record.sandbox,
    );
  }

  async #launchPlan(
    cell: string,
    instanceId: string,
    module: string,
    args: string[],
    sandbox: boolean,
  ): Promise<LaunchPlan> {
    await resolveModule(module);
    await ensurePrivateDir(runDir(this.#home));
    return launchPlan({
      home: this.#home,
      nodeId: this.#nodeId,
      cell,
      instanceId,
      module,
      args,
      sandbox,
      manifest: await loadManifest(module),
      maxInstances: MAX_INSTANCES,
    });
  }

  #sandboxUsed(requested: boolean): "bwrap" | "none" {
    return requested && findBwrap() ? "bwrap" : "none";
  }

  #get(cell: string): Managed {
    checkName(cell);
    const managed = this.#deployments.get(cell);
    if (!managed) {
      throw new CellError(
        "NOT_FOUND",
        `Cell '${cell}' is not deployed: deploy it with \`cell deploy ${cell} <module>\``,
      );
    }
    return managed;
  }

  #view(managed: Managed): Infer<typeof Deployment> {
    return {
      cell: managed.record.cell,
      module: managed.record.module,
      instances: managed.record.instances,
      sandbox: managed.used,
      permissions: managed.record.permissions,
      status: managed.instances.map((i) => i.status()),
    };
  }

  #snapshot(): NucleusState {
    const deployments = [...this.#deployments.values()];
    return {
      version: 1,
      deployments: deployments.map((m) => ({ ...m.record })),
      instances: deployments.flatMap((m) => m.instances).flatMap((i) => i.record() ?? []),
    };
  }

  /** Persists after a process started or exited; a failure is logged, and retried next time. */
  async #persistQuietly(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#store.save(this.#snapshot());
    } catch (e) {
      this.#log((e as Error).message);
    }
  }

  /** Runs lifecycle operations one at a time. */
  #exclusive<T>(action: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new CellError("UNAVAILABLE", "The supervisor has shut down: start the nucleus again"),
      );
    }
    const run = this.#busy.then(action);
    this.#busy = run.catch(() => {});
    return run;
  }
}

function checkName(cell: string): void {
  try {
    checkCellName(cell);
  } catch (e) {
    throw new CellError("INVALID_ARGUMENT", (e as Error).message);
  }
}

function checkCount(instances: number, min: number): void {
  if (!Number.isInteger(instances) || instances < min || instances > MAX_INSTANCES) {
    throw new CellError(
      "INVALID_ARGUMENT",
      `Instances must be a whole number from ${min} to ${MAX_INSTANCES}, not ${instances}`,
    );
  }
}
