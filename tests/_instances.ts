// Helpers for the tests that run several instances of a cell under a real nucleus.
import { type RunningNucleus, startNucleus } from "@cell/nucleus";
import { type Child, spawnReady } from "./_helpers.ts";

/** Starts this home's nucleus in the test process, quietly. */
export function quietNucleus(
  home: string,
  options: { heartbeatIntervalMs?: number } = {},
): Promise<RunningNucleus> {
  return startNucleus({ home, nodeId: "1", log: () => {}, ...options });
}

/** Instance processes of the "who" cell (tests/fixtures/serve_instance.ts), by instance id. */
export class Instances implements AsyncDisposable {
  readonly home: string;
  readonly children: Map<string, Child> = new Map();

  constructor(home: string) {
    this.home = home;
  }

  /** Starts instance `id`; resolves once it serves and has registered. */
  async start(id: string): Promise<Child> {
    const child = await spawnReady("./fixtures/serve_instance.ts", [], {
      CELL_HOME: this.home,
      CELL_INSTANCE_ID: id,
    });
    this.children.set(id, child);
    return child;
  }

  /** Kills every instance still running. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const child of this.children.values()) await child[Symbol.asyncDispose]();
  }
}
