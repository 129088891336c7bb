/**
 * The Vivaldi cell's service definition, and {@linkcode rankInstances}, the ordering behind its
 * `route`: a cell's instances sorted by the RTT estimated from a source coordinate.
 *
 * @module
 */
// Explicit types on every export: JSR's fast check needs them (no inference in the public API).
import type { TArray, TInteger, TNumber, TOptional, TString } from "@sinclair/typebox";
import {
  type Infer,
  type Method,
  method,
  type Protein,
  protein,
  type Service,
  service,
  t,
} from "@cell/sdk";
import { Coordinate, type CoordinateValue, estimateRtt, Instance } from "@cell/sdk/nucleus_api";

/** The Vivaldi cell's name. */
export const VIVALDI_CELL = "vivaldi";

/** Which node: this host when empty, else a node id or an instance id. */
export const NodeRequest: Protein<{ node: TOptional<TString> }> = protein("NodeRequest", {
  /** Empty or absent for this host; a node id, or an instance id the nucleus knows. */
  node: t.optional(t.string()),
});

/** A node's coordinate, when it has one. */
export const NodeCoordinate: Protein<
  { node: TString; coordinate: TOptional<(typeof Coordinate)["schema"]> }
> = protein("NodeCoordinate", {
  /** The node asked about (this host's node id for an empty request). */
  node: t.string(),
  coordinate: t.optional(Coordinate),
});

/** Two nodes, named as in {@linkcode NodeRequest}. */
export const PairRequest: Protein<{ a: TString; b: TString }> = protein("PairRequest", {
  a: t.string(),
  b: t.string(),
});

/** An estimated round-trip time. */
export const RttEstimate: Protein<{ rtt_ms: TNumber }> = protein("RttEstimate", {
  /** Milliseconds. */
  rtt_ms: t.f64(),
});

/** What `route` is asked: the seed's `route({target_cell, source_coordinate, max_results})`. */
export const RouteRequest: Protein<
  {
    target_cell: TString;
    source_coordinate: TOptional<(typeof Coordinate)["schema"]>;
    max_results: TOptional<TInteger>;
  }
> = protein("RouteRequest", {
  /** The cell whose instances to rank. */
  target_cell: t.string(),
  /** Where the caller stands; this host's coordinate when absent. */
  source_coordinate: t.optional(Coordinate),
  /** Instances to return at most; all of them when absent or 0. */
  max_results: t.optional(t.u32()),
});

/** One instance and its estimated RTT from the source. */
export const RouteEntry: Protein<
  { instance: (typeof Instance)["schema"]; rtt_ms: TOptional<TNumber> }
> = protein("RouteEntry", {
  instance: Instance,
  /** Estimated RTT in milliseconds; absent when the instance has no coordinate. */
  rtt_ms: t.optional(t.f64()),
});

/** Instances nearest first; those without a coordinate last, in the nucleus's order. */
export const Routes: Protein<
  {
    source: TOptional<(typeof Coordinate)["schema"]>;
    routes: TArray<(typeof RouteEntry)["schema"]>;
  }
> = protein("Routes", {
  /** The coordinate the estimates start from. */
  source: t.optional(Coordinate),
  routes: t.list(RouteEntry),
});

/** What the Vivaldi cell of this host is doing. */
export const Status: Protein<
  {
    node_id: TString;
    instance_id: TString;
    coordinate: (typeof Coordinate)["schema"];
    peers: TInteger;
    samples: TInteger;
    resets: TInteger;
  }
> = protein("Status", {
  node_id: t.string(),
  /** Its own instance id. */
  instance_id: t.string(),
  /** This host's coordinate. */
  coordinate: Coordinate,
  /** Peers it can ping. */
  peers: t.u32(),
  /** RTT samples folded into the coordinate so far. */
  samples: t.u64(),
  /** Times the coordinate went non-finite and was reset to the origin. */
  resets: t.u32(),
});

const Nothing: Protein<Record<never, never>> = protein("Nothing", {});

/** Network coordinates of this host and of the instances the nucleus knows. */
export const Vivaldi: Service<{
  coordinate: Method<typeof NodeRequest, typeof NodeCoordinate>;
  estimate_rtt: Method<typeof PairRequest, typeof RttEstimate>;
  route: Method<typeof RouteRequest, typeof Routes>;
  status: Method<typeof Nothing, typeof Status>;
}> = service({
  /** The coordinate of this host, a node or an instance; `NOT_FOUND` for an unknown one. */
  coordinate: method(NodeRequest, NodeCoordinate, { idempotent: true }),
  /** Estimated RTT between two nodes or instances; `FAILED_PRECONDITION` if one has no coordinate. */
  estimate_rtt: method(PairRequest, RttEstimate, { idempotent: true }),
  /** The instances of a cell sorted by estimated RTT from a source coordinate. */
  route: method(RouteRequest, Routes, { idempotent: true }),
  /** This host's coordinate and how it is measured. */
  status: method(Nothing, Status, { idempotent: true }),
});

/** The Vivaldi service's type, for clients that import only types. */
export type Vivaldi = typeof Vivaldi;

/** An instance record as the nucleus answers it. */
export type InstanceInfo = Infer<typeof Instance>;

/**
 * Sorts `instances` by the RTT estimated from `source` to each one's coordinate (or, when it
 * has none, `fallback(instance)`, for example its host's), nearest first; instances with no
 * coordinate at all come last, in their original order. Keeps at most `max` (all when 0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rankInstances } from "@cell/vivaldi";
 * const at = (height: number) => ({ vec: [0], error: 0, adjustment: 0, height });
 * const instance = (id: string, height?: number) => ({
 *   cell: "c", node_id: "1", instance_id: id, endpoints: [], pid: 1, metadata: {},
 *   health: "healthy" as const, registered_at_ms: 0, last_heartbeat_ms: 0, in_flight: 0,
 *   ...(height === undefined ? {} : { coordinate: at(height) }),
 * });
 * const routes = rankInstances([instance("far", 0.03), instance("x"), instance("near", 0.001)], at(0));
 * assert.ok(routes.map((r) => r.instance.instance_id).join() === "near,far,x");
 * ```
 */
export function rankInstances(
  instances: readonly InstanceInfo[],
  source: CoordinateValue | undefined,
  max = 0,
  fallback: (instance: InstanceInfo) => CoordinateValue | undefined = () => undefined,
): Infer<typeof RouteEntry>[] {
  const ranked = instances.map((instance, index) => {
    const c = instance.coordinate ?? fallback(instance);
    const usable = source !== undefined && c !== undefined && c.vec.length === source.vec.length;
    const rtt = usable ? estimateRtt(source, c) : NaN;
    return { instance, index, rtt: Number.isFinite(rtt) ? rtt : Infinity };
  });
  ranked.sort((x, y) => x.rtt - y.rtt || x.index - y.index);
  const kept = max > 0 ? ranked.slice(0, max) : ranked;
  return kept.map(({ instance, rtt }) =>
    rtt === Infinity ? { instance } : { instance, rtt_ms: rtt * 1000 }
  );
}
