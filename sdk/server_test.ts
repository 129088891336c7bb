import { assert, assertEquals, assertRejects } from "./_assert_test.ts";
import { CellError, connect, connectDynamic, schemaOf, serve, type Transport } from "./mod.ts";
import { tempCellHome } from "./testing.ts";
import { Greeter, Lab, labHandlers } from "../tests/fixtures/cells.ts";
import { inprocTransport } from "./inproc.ts";
import { shmTransport } from "./shm.ts";

const greeter = Greeter.implement({ greet: ({ name }) => ({ greeting: `Hello, ${name}!` }) });

// The same cells over each transport, the shared-memory ring included: a cell's code does not
// change with the transport its callers use.
for (const transport of ["inproc", "uds", "shm"] as const) {
  Deno.test(`a typed client calls a cell over ${transport}`, async () => {
    await using _home = await tempCellHome();
    await using _server = await serve("greeter", greeter, { handleSignals: false });
    await using client = await connect<typeof Greeter>("greeter", { transport });
    assertEquals(await client.greet({ name: "World" }), { greeting: "Hello, World!" });
    assertEquals(client.$info.transport, transport);
  });

  Deno.test(`many calls in flight share one ${transport} connection and answer out of order`, async () => {
    await using _home = await tempCellHome();
    await using _server = await serve("lab", labHandlers(), { handleSignals: false });
    await using lab = await connect<typeof Lab>("lab", { transport });
    const tags = Array.from({ length: 200 }, (_, i) => i);
    const results = await Promise.all(
      tags.map((tag) => lab.run({ tag, delay_ms: (tag * 7) % 23 })),
    );
    assertEquals(results.map((r) => r.tag), tags);
  });
}

Deno.test("the ring adapter as transport reaches the ring beside the cell's socket", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  await using client = await connect<typeof Greeter>("greeter", { transport: shmTransport });
  assertEquals(await client.greet({ name: "Ring" }), { greeting: "Hello, Ring!" });
  assert(client.$info.address.endsWith("/greeter.ring"), client.$info.address);
});

Deno.test('transport "shm" where the ring cannot be used fails at once, saying why', async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  const saved = Deno.env.get("CELL_SHM");
  Deno.env.set("CELL_SHM", "0");
  try {
    const error = await assertRejects(
      () => connect<typeof Greeter>("greeter", { transport: "shm" }),
      CellError,
    );
    assertEquals(error.code, "FAILED_PRECONDITION");
    assert(/CELL_SHM/.test(error.message) && /"uds"/.test(error.message), error.message);
  } finally {
    if (saved === undefined) Deno.env.delete("CELL_SHM");
    else Deno.env.set("CELL_SHM", saved);
  }
});

Deno.test("wrong field types fail with INVALID_ARGUMENT naming the field", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  await using client = await connect<typeof Greeter>("greeter", { transport: "uds" });
  const error = await assertRejects(
    () => client.greet({ name: 42 } as unknown as { name: string }),
    CellError,
  );
  assertEquals(error.code, "INVALID_ARGUMENT");
  assert(error.message.includes("/name"), error.message);
  const details = error.details as { errors: { path: string }[] };
  assertEquals(details.errors[0]?.path, "/name");
  // The server keeps serving after a bad call.
  assertEquals((await client.greet({ name: "again" })).greeting, "Hello, again!");
});

Deno.test("an unknown method fails with UNIMPLEMENTED listing the methods", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  await using client = await connect<typeof Greeter>("greeter");
  const error = await assertRejects(() => client.$call("grete", {}), CellError);
  assertEquals(error.code, "UNIMPLEMENTED");
  assert(error.message.includes("'greet'"), error.message);
});

Deno.test("a handler's CellError reaches the caller with its code and details", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("lab", labHandlers(), { handleSignals: false });
  await using lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const error = await assertRejects(() => lab.run({ fail: "NOT_FOUND" }), CellError);
  assertEquals(error.code, "NOT_FOUND");
  assertEquals(error.details, { asked: "NOT_FOUND" });
});

Deno.test("a handler that throws a plain Error fails the call with UNKNOWN and is reported", async () => {
  await using _home = await tempCellHome();
  const reported: string[] = [];
  await using _server = await serve("lab", labHandlers(), {
    handleSignals: false,
    onError: (e, m) => reported.push(`${m}: ${(e as Error).message}`),
  });
  await using lab = await connect<typeof Lab>("lab");
  const error = await assertRejects(() => lab.run({ crash: "boom" }), CellError);
  assertEquals(error.code, "UNKNOWN");
  assertEquals(error.message, "boom");
  assertEquals(reported, ["run: boom"]);
});

Deno.test("a handler returning an invalid response fails with INTERNAL", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("lab", labHandlers(), { handleSignals: false });
  await using lab = await connect<typeof Lab>("lab");
  const error = await assertRejects(() => lab.run({ invalid: true }), CellError);
  assertEquals(error.code, "INTERNAL");
  assert(error.message.includes("/tag"), error.message);
});

Deno.test("a call past its deadline fails with DEADLINE_EXCEEDED and the handler sees it", async () => {
  await using _home = await tempCellHome();
  const seen: string[] = [];
  await using _server = await serve("lab", labHandlers((o) => seen.push(o)), {
    handleSignals: false,
  });
  await using lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const error = await assertRejects(
    () => lab.run({ delay_ms: 5000 }, { timeoutMs: 100 }),
    CellError,
  );
  assertEquals(error.code, "DEADLINE_EXCEEDED");
  await waitFor(() => seen.length === 1);
  // The CANCEL sent at the deadline or the server's own deadline timer, whichever came first.
  assert(seen[0] === "CANCELLED" || seen[0] === "DEADLINE_EXCEEDED", seen[0]);
});

Deno.test("a call with a timeout of a second or more fails at its deadline, never before", async () => {
  // Such calls take their deadline from the client's shared clock tick (one clock read per tick,
  // not per call): it may come a tick late, never early.
  await using _home = await tempCellHome();
  await using _server = await serve("lab", labHandlers(), { handleSignals: false });
  await using lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const started = Date.now();
  const error = await assertRejects(
    () => lab.run({ delay_ms: 5000 }, { timeoutMs: 1000 }),
    CellError,
  );
  const elapsed = Date.now() - started;
  assertEquals(error.code, "DEADLINE_EXCEEDED");
  assert(elapsed >= 1000, `failed after ${elapsed} ms, before its 1000 ms timeout`);
  assert(elapsed < 2500, `failed after ${elapsed} ms, long after its 1000 ms timeout`);
});

Deno.test("cancelling a call aborts the handler on the server", async () => {
  await using _home = await tempCellHome();
  const seen: string[] = [];
  await using _server = await serve("lab", labHandlers((o) => seen.push(o)), {
    handleSignals: false,
  });
  await using lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const controller = new AbortController();
  const call = lab.run({ delay_ms: 5000 }, { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  const error = await assertRejects(() => call, CellError);
  assertEquals(error.code, "CANCELLED");
  await waitFor(() => seen.length === 1);
  assertEquals(seen, ["CANCELLED"]);
});

Deno.test("a client that disconnects mid-call aborts the handler", async () => {
  await using _home = await tempCellHome();
  const seen: string[] = [];
  await using _server = await serve("lab", labHandlers((o) => seen.push(o)), {
    handleSignals: false,
  });
  const lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const call = lab.run({ delay_ms: 5000 });
  await new Promise((r) => setTimeout(r, 50));
  await lab.$close();
  assertEquals((await assertRejects(() => call, CellError)).code, "CANCELLED");
  await waitFor(() => seen.length === 1);
  assertEquals(seen, ["CANCELLED"]);
});

Deno.test("metadata and the caller's identity reach the handler", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("lab", labHandlers(), { handleSignals: false });
  await using lab = await connect<typeof Lab>("lab", {
    transport: "uds",
    peer: "test-client",
    metadata: { trace: "t-1" },
  });
  const outcome = await lab.run({}, { metadata: { user: "ada" } });
  assertEquals(outcome.peer, "test-client");
  assertEquals(outcome.metadata, { trace: "t-1", user: "ada" });
});

Deno.test("a message larger than the server accepts fails with RESOURCE_EXHAUSTED before sending", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("lab", labHandlers(), {
    handleSignals: false,
    maxFrame: 64 * 1024,
  });
  await using lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const error = await assertRejects(
    () => lab.$call("run", { tag: 1, padding: "x".repeat(100_000) }),
    CellError,
  );
  assertEquals(error.code, "RESOURCE_EXHAUSTED");
  // Large payloads below the limit pass both ways.
  assertEquals((await lab.run({ size: 60_000 })).data?.length, 60_000);
});

Deno.test("the schema is introspectable, with TSDoc, and matches the definition's hash", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  await using client = await connect<typeof Greeter>("greeter", { transport: "uds" });
  const schema = await client.$schema();
  assertEquals(schema.hash, schemaOf("greeter", Greeter).hash);
  assertEquals(schema.hash, client.$info.schemaHash);
  assertEquals(schema.doc, "Greets.");
  assertEquals(schema.methods, [
    {
      name: "greet",
      request: "Request",
      response: "Response",
      idempotent: true,
      doc: "Says hello.",
    },
  ]);
  const request = schema.proteins.find((p) => p.name === "Request");
  assertEquals(request?.doc, "Who to greet.");
  assertEquals(request?.fields, [
    { name: "name", type: { kind: "string" }, optional: false, doc: "The name to greet." },
  ]);
});

Deno.test("a dynamic client works from the schema alone", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  await using client = await connectDynamic("greeter", { transport: "uds" });
  assertEquals(client.$methods, ["greet"]);
  assertEquals(await client.greet!({ name: "Dyn" }), { greeting: "Hello, Dyn!" });
  assertEquals((await assertRejects(() => client.nope!({}), CellError)).code, "UNIMPLEMENTED");
});

Deno.test("a strict client refuses a cell whose schema hash differs", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  const error = await assertRejects(
    () => connect("greeter", { transport: "uds", strict: true, schemaHash: "sha256:00" }),
    CellError,
  );
  assertEquals(error.code, "FAILED_PRECONDITION");
  await using ok = await connect("greeter", { service: Greeter, strict: true, transport: "uds" });
  assert(ok.$info.schemaHash?.startsWith("sha256:"));
});

Deno.test("connecting to a cell that is not running fails with UNAVAILABLE and says where it looked", async () => {
  await using home = await tempCellHome();
  const error = await assertRejects(() => connect("nobody"), CellError);
  assertEquals(error.code, "UNAVAILABLE");
  assert(error.message.includes(`${home.path}/run/nobody.sock`), error.message);
});

Deno.test("ping measures a round trip", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false });
  await using client = await connect("greeter", { transport: "uds" });
  const rtt = await client.$ping();
  assert(rtt > 0 && rtt < 5000, String(rtt));
});

Deno.test("shutdown lets in-flight calls finish, then the client follows the cell's restart", async () => {
  await using _home = await tempCellHome();
  const first = await serve("lab", labHandlers(), { handleSignals: false });
  await using lab = await connect<typeof Lab>("lab", { transport: "uds" });
  const inFlight = lab.run({ tag: 1, delay_ms: 200 });
  await new Promise((r) => setTimeout(r, 50));
  const stopping = first.shutdown();
  assertEquals((await inFlight).tag, 1);
  await stopping;
  await using _second = await serve("lab", labHandlers(), { handleSignals: false });
  assertEquals((await lab.run({ tag: 2 })).tag, 2);
});

Deno.test("serving twice on one socket is refused while the first is alive", async () => {
  await using _home = await tempCellHome();
  await using _first = await serve("greeter", greeter, { handleSignals: false, inproc: false });
  const error = await assertRejects(
    () => serve("greeter", greeter, { handleSignals: false, inproc: false }),
    CellError,
  );
  assertEquals(error.code, "ALREADY_EXISTS");
});

/** A transport that drops each connection right after its first REQUEST was delivered. */
function droppingTransport(drops: number): Transport {
  let left = drops;
  return {
    name: "dropping",
    listen: inprocTransport.listen,
    async dial(address, options) {
      const conn = await inprocTransport.dial(address, options);
      if (left-- <= 0) return conn;
      const send = conn.send.bind(conn);
      conn.send = (frame) => {
        send(frame);
        if (frame.kind === 1) {
          queueMicrotask(() => conn.close(new CellError("UNAVAILABLE", "dropped")));
        }
      };
      return conn;
    },
  };
}

Deno.test("an idempotent call is retried after its connection drops; others are not", async () => {
  const calls: string[] = [];
  await using _server = await serve("lab", labHandlers((o) => calls.push(o)), {
    socket: false,
    handleSignals: false,
  });
  {
    await using lab = await connect<typeof Lab>("lab", {
      service: Lab,
      address: "lab",
      transport: droppingTransport(2),
    });
    const error = await assertRejects(() => lab.run({ tag: 1 }), CellError);
    assertEquals(error.code, "UNAVAILABLE");
    await waitFor(() => calls.length === 1);
    assertEquals((await lab.retryable({ tag: 2 })).tag, 2);
    assertEquals(calls.length, 3); // run once; retryable twice (dropped, then answered).
  }
});

Deno.test("a method name a client would confuse with a promise is refused", async () => {
  const { service, method, protein } = await import("./mod.ts");
  const P = protein("P", {});
  let error: unknown;
  try {
    service({ then: method(P, P) });
  } catch (e) {
    error = e;
  }
  assert(error instanceof TypeError);
});

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error("Condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("only a protein's declared fields travel, whoever encodes them", async () => {
  await using _home = await tempCellHome();
  let seen: unknown;
  const leaky = Greeter.implement({
    greet: (request) => {
      seen = request;
      // Undeclared properties (a secret, say) stay in the server: only `greeting` is sent.
      return { greeting: "hi", secret: "s3cr3t" } as { greeting: string };
    },
  });
  await using _server = await serve("greeter", leaky, { handleSignals: false });
  // A client that knows the service sends only the declared request fields.
  await using typed = await connect("greeter", { service: Greeter, transport: "uds" });
  const request = { name: "World", password: "hunter2" };
  assertEquals(await typed.greet(request), { greeting: "hi" });
  assertEquals(seen, { name: "World" });
  // A client without it sends the object as it is; the server accepts and ignores extras.
  await using bare = await connect<typeof Greeter>("greeter", { transport: "uds" });
  assertEquals(await bare.greet(request), { greeting: "hi" });
  assertEquals(seen, request);
});

Deno.test("a client's methods become its own properties on first use, and stay out of its keys", async () => {
  await using _home = await tempCellHome();
  await using _server = await serve(
    "greeter",
    Greeter.implement({ greet: () => ({ greeting: "hi" }) }),
    {
      handleSignals: false,
    },
  );
  await using client = await connect("greeter", { service: Greeter, transport: "uds" });
  assert(!Object.hasOwn(client, "greet"));
  const greet = client.greet;
  assert(Object.hasOwn(client, "greet") && client.greet === greet);
  assertEquals(await client.greet({ name: "x" }), { greeting: "hi" });
  assertEquals(Object.keys(client), []);
  // Promise-like names and helpers are not methods; a name the service lacks still calls out.
  assertEquals((client as unknown as Record<string, unknown>).then, undefined);
  assertEquals(typeof client.$close, "function");
  const unknown = (client as unknown as Record<string, (r: unknown) => Promise<unknown>>).nope;
  const error = await assertRejects(() => unknown!({}), CellError);
  assertEquals(error.code, "UNIMPLEMENTED");
});
