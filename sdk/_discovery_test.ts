import { assert, assertEquals } from "./_assert_test.ts";
import { type InstanceInfo, type NucleusCaller, subscribeInstances } from "./_discovery.ts";
import { tempCellHome } from "./testing.ts";

function instance(id: string): InstanceInfo {
  return {
    cell: "c",
    node_id: "1",
    instance_id: id,
    endpoints: [{ transport: "uds", address: `/run/c@${id}.sock` }],
    pid: 1,
    metadata: {},
    health: "healthy",
    registered_at_ms: 1,
    last_heartbeat_ms: 1,
    in_flight: 0,
  };
}

/** A nucleus whose `watch` answers when the test says so. */
class FakeNucleus {
  version = 1;
  instances = [instance("a")];
  callers = 0;
  closed = 0;
  watches = 0;
  #wake: (() => void)[] = [];

  change(instances: InstanceInfo[]): void {
    this.version++;
    this.instances = instances;
    for (const wake of this.#wake.splice(0)) wake();
  }

  caller = (): NucleusCaller => {
    this.callers++;
    return {
      call: (method, _payload, options) => {
        const answer = () => ({ version: this.version, instances: this.instances });
        if (method === "discover") return Promise.resolve(answer());
        this.watches++;
        return new Promise((resolve, reject) => {
          this.#wake.push(() => resolve(answer()));
          options?.signal?.addEventListener("abort", () => reject(new Error("aborted")));
        });
      },
      close: () => {
        this.closed++;
        return Promise.resolve();
      },
    };
  };
}

Deno.test("clients of one cell share one watcher, which stops with the last of them", async () => {
  await using home = await tempCellHome();
  await Deno.mkdir(`${home.path}/run`);
  using _socket = Deno.listen({ transport: "unix", path: `${home.path}/run/nucleus.sock` });
  const nucleus = new FakeNucleus();
  const seen: string[][] = [];
  const listener = () => (list: InstanceInfo[]) => seen.push(list.map((i) => i.instance_id));
  const first = await subscribeInstances("c", undefined, nucleus.caller, listener());
  const second = await subscribeInstances("c", undefined, nucleus.caller, listener());
  assert(first && second);
  assertEquals(first.instances.map((i) => i.instance_id), ["a"]);
  assertEquals(nucleus.callers, 1);
  nucleus.change([instance("a"), instance("b")]);
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(seen, [["a", "b"], ["a", "b"]]);
  assertEquals(nucleus.watches, 2); // one long-poll at a time, for both clients
  first.unsubscribe();
  assertEquals(nucleus.closed, 0);
  second.unsubscribe();
  assertEquals(nucleus.closed, 1);
  await new Promise((r) => setTimeout(r, 10));
});

Deno.test("no nucleus socket, CELL_NUCLEUS=0 or no instance: no subscription", async () => {
  await using home = await tempCellHome();
  const nucleus = new FakeNucleus();
  assertEquals(await subscribeInstances("c", undefined, nucleus.caller, () => {}), undefined);
  assertEquals(nucleus.callers, 0);
  await Deno.mkdir(`${home.path}/run`);
  using _socket = Deno.listen({ transport: "unix", path: `${home.path}/run/nucleus.sock` });
  Deno.env.set("CELL_NUCLEUS", "0");
  try {
    assertEquals(await subscribeInstances("c", undefined, nucleus.caller, () => {}), undefined);
  } finally {
    Deno.env.delete("CELL_NUCLEUS");
  }
  nucleus.instances = [];
  assertEquals(await subscribeInstances("c", undefined, nucleus.caller, () => {}), undefined);
  assertEquals(nucleus.closed, 1);
});
