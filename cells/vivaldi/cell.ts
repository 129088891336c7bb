/**
 * The Vivaldi cell of a host: it measures the host's coordinate with a {@linkcode VivaldiAgent},
 * hands it to the nucleus (which answers it with every discovery, so clients know where they
 * stand), and serves {@linkcode Vivaldi}: `coordinate`, `estimate_rtt`, `route` and `status`.
 * An ordinary cell: served, registered and called through the SDK.
 *
 * @module
 */
import {
  CellError,
  NucleusClient,
  type RegisteredInstance,
  serve,
  type Server,
  type Transport,
} from "@cell/sdk";
import type { CoordinateValue } from "@cell/sdk/nucleus_api";
import { VivaldiAgent } from "./agent.ts";
import { estimateRtt } from "./coordinate.ts";
import { type InstanceInfo, rankInstances, Vivaldi, VIVALDI_CELL } from "./service.ts";

/** Options of {@linkcode startVivaldi}. */
export interface VivaldiCellOptions {
  /**
   * The Cell home: its nucleus must run.
   * @default {"$CELL_HOME, or ~/.cell"}
   */
  home?: string;
  /**
   * Milliseconds between two probes of a peer.
   * @default {1000}
   */
  intervalMs?: number;
  /** Transport to dial peers with (tests wrap it to add delay). */
  transport?: Transport;
  /**
   * Drain and exit on SIGINT/SIGTERM.
   * @default {true}
   */
  handleSignals?: boolean;
}

/** A running Vivaldi cell. */
export interface RunningVivaldi extends AsyncDisposable {
  readonly server: Server;
  readonly agent: VivaldiAgent;
  /** Stops measuring, deregisters and stops serving. */
  stop(): Promise<void>;
}

/** A coordinate as a message field (proteins' lists are mutable). */
const wire = (c: CoordinateValue) => ({ ...c, vec: [...c.vec] });

/** `transport:address` strings of a server as registration endpoints, ring first. */
function endpointsOf(server: Server): { transport: string; address: string }[] {
  const all = server.endpoints.map((e) => {
    const colon = e.indexOf(":");
    return { transport: e.slice(0, colon), address: e.slice(colon + 1) };
  });
  return [
    ...all.filter((e) => e.transport === "shm"),
    ...all.filter((e) => e.transport === "uds"),
  ];
}

/**
 * Starts this host's Vivaldi cell; rejects with `UNAVAILABLE` when no nucleus runs.
 *
 * @example
 * ```ts ignore
 * import { startVivaldi } from "@cell/vivaldi";
 * await using vivaldi = await startVivaldi();
 * console.log(vivaldi.agent.coordinate);
 * ```
 */
export async function startVivaldi(options: VivaldiCellOptions = {}): Promise<RunningVivaldi> {
  const home = options.home;
  const nucleus = await NucleusClient.connect(home === undefined ? {} : { home });
  let hostNode = "";
  let registered: RegisteredInstance | undefined;
  const agent = new VivaldiAgent({
    ...(home === undefined ? {} : { home }),
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
    ...(options.transport === undefined ? {} : { transport: options.transport }),
    onUpdate: (c) => nucleus.setCoordinate(c).catch(() => {}),
  });
  // An instance id or a node id; empty (or this host's node id) is this host.
  const find = async (node: string): Promise<CoordinateValue | undefined> => {
    if (node === "" || node === hostNode) return agent.coordinate;
    const { instances } = await nucleus.discover("", { all: true });
    const instance = instances.find((i) => i.instance_id === node);
    if (!instance) {
      throw new CellError(
        "NOT_FOUND",
        `No node or instance '${node}' is known here: give an instance id from ` +
          "'cell discover <cell>', or this host's node id",
      );
    }
    return instance.coordinate ?? (instance.node_id === hostNode ? agent.coordinate : undefined);
  };
  const hostOf = (i: InstanceInfo) => i.node_id === hostNode ? agent.coordinate : undefined;
  const server = await serve(
    VIVALDI_CELL,
    Vivaldi.implement({
      coordinate: async ({ node = "" }) => {
        const coordinate = await find(node);
        const name = node || hostNode;
        return coordinate ? { node: name, coordinate: wire(coordinate) } : { node: name };
      },
      estimate_rtt: async ({ a, b }) => {
        const [ca, cb] = [await find(a), await find(b)];
        if (!ca || !cb || ca.vec.length !== cb.vec.length) {
          throw new CellError(
            "FAILED_PRECONDITION",
            `'${ca ? b : a}' has no coordinate comparable to the other's: only instances ` +
              "that measure one (with a VivaldiAgent), and hosts, have coordinates",
          );
        }
        return { rtt_ms: estimateRtt(ca, cb) * 1000 };
      },
      route: async ({ target_cell, source_coordinate, max_results }) => {
        const source = source_coordinate ?? agent.coordinate;
        const { instances } = await nucleus.discover(target_cell);
        const routes = rankInstances(instances, source, max_results ?? 0, hostOf);
        return { source: wire(source), routes };
      },
      status: () => ({
        node_id: hostNode,
        instance_id: registered?.instanceId ?? "",
        coordinate: wire(agent.coordinate),
        peers: agent.peers,
        samples: agent.samples,
        resets: agent.resets,
      }),
    }),
    {
      ...(home === undefined ? {} : { home }),
      // Registered below, with the coordinate its heartbeats carry.
      register: false,
      handleSignals: options.handleSignals ?? true,
    },
  );
  try {
    registered = await nucleus.register(VIVALDI_CELL, "", {
      endpoints: endpointsOf(server),
      coordinate: () => agent.coordinate,
    });
    hostNode = (await nucleus.coordinate()).node_id;
  } catch (e) {
    await server.shutdown({ drainTimeoutMs: 0 });
    await nucleus.close();
    throw e;
  }
  agent.self = registered.instanceId;
  agent.start();
  let stopped: Promise<void> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      await agent.close();
      await nucleus.close(); // deregisters
      await server.shutdown({ drainTimeoutMs: 1000 });
    })();
  server.finished.then(stop);
  return { server, agent, stop, [Symbol.asyncDispose]: stop };
}
