/**
 * Health and topology reports, computed from the registry's instances and the supervisor's
 * desired instance counts.
 *
 * @module
 */
import type { Infer } from "@cell/sdk";
import type { CellHealth, HealthReport, HostHealth, Topology } from "@cell/sdk/nucleus_api";
import type { InstanceInfo } from "./registry.ts";

/** `healthy`, `degraded` or `down`. */
export type Status = Infer<typeof CellHealth>["status"];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function hostStatus(instances: number, healthy: number): Status {
  if (healthy === instances) return "healthy";
  return healthy === 0 ? "down" : "degraded";
}

/**
 * Health per cell and per host. A cell is `healthy` when it has at least one healthy instance,
 * none unhealthy, and as many healthy as its deployment wants; `down` with no healthy instance;
 * `degraded` in between. The whole report is `healthy` when every cell is, `down` when every
 * cell is down, `degraded` otherwise (and `healthy` with no cells at all).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { healthReport } from "@cell/nucleus";
 *
 * const report = healthReport([], "1", new Map([["my-service", 2]]));
 * assert.ok(report.status === "down");
 * assert.ok(report.cells[0]?.desired === 2 && report.hosts[0]?.node_id === "1");
 * ```
 */
export function healthReport(
  instances: readonly InstanceInfo[],
  nodeId: string,
  desired: ReadonlyMap<string, number>,
): Infer<typeof HealthReport> {
  const cells = new Map<string, Mutable<Infer<typeof CellHealth>>>();
  const cellOf = (cell: string) => {
    let health = cells.get(cell);
    if (!health) {
      health = { cell, healthy: 0, unhealthy: 0, desired: desired.get(cell) ?? 0, status: "down" };
      cells.set(cell, health);
    }
    return health;
  };
  for (const cell of desired.keys()) cellOf(cell);
  const hosts = new Map<string, Mutable<Infer<typeof HostHealth>> & { names: Set<string> }>();
  const hostOf = (node_id: string) => {
    let host = hosts.get(node_id);
    if (!host) {
      host = { node_id, cells: 0, instances: 0, healthy: 0, status: "healthy", names: new Set() };
      hosts.set(node_id, host);
    }
    return host;
  };
  hostOf(nodeId);
  for (const instance of instances) {
    const cell = cellOf(instance.cell);
    const host = hostOf(instance.node_id);
    host.instances++;
    host.names.add(instance.cell);
    if (instance.health === "healthy") {
      cell.healthy++;
      host.healthy++;
    } else if (instance.health !== "starting") {
      cell.unhealthy++;
    }
  }
  for (const cell of cells.values()) {
    cell.status = cell.healthy === 0
      ? "down"
      : cell.unhealthy > 0 || cell.healthy < cell.desired
      ? "degraded"
      : "healthy";
  }
  const cellList = [...cells.values()].sort((a, b) => a.cell.localeCompare(b.cell));
  const statuses = new Set(cellList.map((c) => c.status));
  const status: Status = statuses.size === 0 || (statuses.size === 1 && statuses.has("healthy"))
    ? "healthy"
    : statuses.size === 1 && statuses.has("down")
    ? "down"
    : "degraded";
  return {
    status,
    cells: cellList,
    hosts: [...hosts.values()].sort((a, b) => a.node_id.localeCompare(b.node_id)).map((
      { names, ...host },
    ) => ({ ...host, cells: names.size, status: hostStatus(host.instances, host.healthy) })),
  };
}

/**
 * Every host and its instances, this nucleus's own host first (even when it runs nothing).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { topology } from "@cell/nucleus";
 * assert.ok(topology([], "1").hosts[0]?.node_id === "1");
 * ```
 */
export function topology(
  instances: readonly InstanceInfo[],
  nodeId: string,
): Infer<typeof Topology> {
  const hosts = new Map<string, InstanceInfo[]>([[nodeId, []]]);
  for (const instance of instances) {
    let list = hosts.get(instance.node_id);
    if (!list) hosts.set(instance.node_id, list = []);
    list.push(instance);
  }
  return {
    node_id: nodeId,
    hosts: [...hosts].map(([node_id, list]) => ({
      node_id,
      instances: list.sort((a, b) =>
        a.cell.localeCompare(b.cell) || a.instance_id.localeCompare(b.instance_id)
      ),
    })),
  };
}
