// Helpers for the nucleus commands' tests: a nucleus served from the test on a private home.
import { startNucleus } from "@cell/nucleus";
import { type Client, connect } from "@cell/sdk";
import { Nucleus } from "@cell/sdk/nucleus_api";
import { tempHome } from "./_testing.ts";

/** A nucleus on a fresh home, with a client of it; everything removed on dispose. */
export interface TestNucleus extends AsyncDisposable {
  /** The Cell home. */
  readonly home: string;
  /** A client of the nucleus. */
  readonly client: Client<typeof Nucleus>;
}

/** Starts a nucleus (node id "1") on a fresh home. */
export async function testNucleus(): Promise<TestNucleus> {
  const home = await tempHome();
  const nucleus = await startNucleus({ home: home.path, nodeId: "1", log: () => {} });
  const client = await connect<typeof Nucleus>("nucleus", { service: Nucleus, home: home.path });
  return {
    home: home.path,
    client,
    async [Symbol.asyncDispose]() {
      await client.$close();
      await nucleus.stop();
      await home[Symbol.asyncDispose]();
    },
  };
}

/** Registers an instance of `cell` and heartbeats once, so that it is healthy. */
export async function healthyInstance(
  client: Client<typeof Nucleus>,
  cell: string,
  healthy = true,
): Promise<string> {
  const lease = await client.register({
    cell,
    node_id: "",
    endpoints: [{ transport: "uds", address: `/tmp/${cell}.sock` }],
    pid: 4242,
  });
  await client.heartbeat({ lease_id: lease.lease_id, healthy });
  return lease.instance_id;
}
