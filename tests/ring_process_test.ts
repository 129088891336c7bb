// The shared-memory ring between real processes: a killed peer, a peer of another user, a
// corrupt ring, the segments left in /dev/shm, and the CPU an idle connection costs.
// Run as a program, this file is the server of these tests.
import { CellError, connect, method, protein, serve, service, t } from "@cell/sdk";
import { shmTransport } from "../sdk/shm.ts";
import { dialRing, listenRing, loadRingLibrary, type RingChannel, RingError } from "@cell/ring";
import { assert, assertEquals, spawnReady } from "./_helpers.ts";
import type { Frame } from "../sdk/protocol.ts";
import { seededRandom } from "@cell/vivaldi";

const Name = protein("Name", { name: t.string() });
const Greeting = protein("Greeting", { greeting: t.string() });
const Ringer = service({
  greet: method(Name, Greeting),
  /** Never answers: a call in flight for as long as the server lives. */
  hang: method(Name, Greeting),
});

if (import.meta.main) {
  const [home, address] = Deno.args as [string, string];
  const server = await serve(
    "ringer",
    Ringer.implement({
      greet: ({ name }) => ({ greeting: `Hello, ${name}!` }),
      hang: () => new Promise(() => {}),
    }),
    { home, inproc: false, endpoints: [{ transport: shmTransport, address }] },
  );
  console.log("ready");
  await server.finished;
}

const prefix = async () => `cell-ring-${(await loadRingLibrary()).cell_ring_euid()}-`;
const ourSegments = async () => {
  const p = await prefix();
  return Array.from(Deno.readDirSync("/dev/shm")).map((e) => e.name).filter((n) => n.startsWith(p));
};
const before = new Set(await ourSegments());

async function ringServer(): Promise<
  { home: string; address: string } & AsyncDisposable & {
    child: Awaited<ReturnType<typeof spawnReady>>;
  }
> {
  const home = await Deno.makeTempDir({ prefix: "cell-ring-test-" });
  const address = `${home}/ringer-test.ring`; // Besides the one serve() may add itself.
  const child = await spawnReady("./ring_process_test.ts", [home, address], { CELL_HOME: home });
  return {
    home,
    address,
    child,
    async [Symbol.asyncDispose]() {
      await child[Symbol.asyncDispose]();
      await Deno.remove(home, { recursive: true });
    },
  };
}

Deno.test("calls over the ring reach a server in another process", async () => {
  await using server = await ringServer();
  await using client = await connect<typeof Ringer>("ringer", {
    transport: shmTransport,
    address: server.address,
  });
  for (let i = 0; i < 1000; i++) {
    assertEquals((await client.greet({ name: `n${i}` })).greeting, `Hello, n${i}!`);
  }
  const big = "x".repeat(3 << 20); // Over a record: the message is split and reassembled.
  assertEquals((await client.greet({ name: big })).greeting.length, big.length + 8);
});

Deno.test("64 calls in flight between two processes each get their own answer, of any size", async () => {
  // Many calls of random sizes both ways, with records published by plain stores on x86-64
  // (ffi/ring.ts, storeRelease): every answer must be the one its call asked for.
  const seed = crypto.getRandomValues(new Uint32Array(1))[0]!;
  const random = seededRandom(seed);
  // Mostly short names (one record, often sharing a cache line), some over the 1 KiB the writer
  // stages, a few over a record (split and reassembled); ASCII and multi-byte characters.
  const name = () => {
    const r = random();
    const length = r < 0.8
      ? Math.floor(random() * 40)
      : r < 0.98
      ? 1000 + random() * 3000
      : 300_000;
    const unit = random() < 0.7 ? "a" : "é€";
    return unit.repeat(Math.ceil(length / unit.length)).slice(0, length) + `#${random()}`;
  };
  await using server = await ringServer();
  await using client = await connect<typeof Ringer>("ringer", {
    transport: shmTransport,
    address: server.address,
  });
  let calls = 0;
  const worker = async () => {
    for (let i = 0; i < 250; i++) {
      const n = name();
      const { greeting } = await client.greet({ name: n });
      assert(greeting === `Hello, ${n}!`, `seed ${seed}: wrong answer for a name of ${n.length}`);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  assertEquals(calls, 64 * 250);
});

Deno.test("calls of callers resumed together go out even when only some of them call again", async () => {
  // The frames sent by callers that one batch of answers resumed are published with the last
  // of them, or at the loop's next turn (sdk/_shm_connection.ts): here callers stop at random,
  // so most batches resume some that send nothing. A frame held back for good would end in a
  // DEADLINE_EXCEEDED below, not in a hang.
  await using server = await ringServer();
  await using client = await connect<typeof Ringer>("ringer", {
    transport: shmTransport,
    address: server.address,
  });
  let answered = 0;
  const worker = async (calls: number) => {
    for (let i = 0; i < calls; i++) {
      await client.greet({ name: `w${i}` }, { timeoutMs: 5000 });
      answered++;
    }
  };
  for (let round = 0; round < 20; round++) {
    const counts = Array.from({ length: 64 }, () => 1 + Math.floor(Math.random() * 40));
    const before = answered;
    await Promise.all(counts.map(worker));
    assertEquals(answered - before, counts.reduce((a, b) => a + b, 0));
  }
});

Deno.test("a client and a server in one process talk over the ring without stalling", async () => {
  const home = await Deno.makeTempDir({ prefix: "cell-ring-test-" });
  const address = `${home}/local.ring`;
  const server = await serve(
    "ringer-local",
    Ringer.implement({
      greet: ({ name }) => ({ greeting: `Hello, ${name}!` }),
      hang: () => new Promise(() => {}),
    }),
    {
      home,
      inproc: false,
      handleSignals: false,
      endpoints: [{ transport: shmTransport, address }],
    },
  );
  try {
    await using client = await connect<typeof Ringer>("ringer-local", {
      transport: shmTransport,
      address,
    });
    const started = performance.now();
    for (let i = 0; i < 2000; i++) await client.greet({ name: "me" });
    // Each side parks while the other works; a parked peer in the same process is kicked
    // directly, or every call would wait for a spin budget.
    const perCall = (performance.now() - started) / 2000;
    assert(perCall < 0.2, `${perCall.toFixed(3)} ms per call`);
  } finally {
    await server.shutdown();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a kill -9'd server turns the calls in flight into UNAVAILABLE within a second", async () => {
  await using server = await ringServer();
  await using client = await connect<typeof Ringer>("ringer", {
    transport: shmTransport,
    address: server.address,
  });
  await client.greet({ name: "warm" });
  const calls = [1, 2, 3].map(() =>
    client.hang({ name: "x" }).then(() => undefined, (e: unknown) => e)
  );
  await new Promise((r) => setTimeout(r, 100)); // Long enough for the client loop to park.
  const killed = performance.now();
  server.child.process.kill("SIGKILL");
  const errors = await Promise.all(calls);
  const elapsed = performance.now() - killed;
  for (const e of errors) {
    assert(e instanceof CellError, String(e));
    assertEquals(e.code, "UNAVAILABLE");
  }
  assert(elapsed < 1000, `calls failed after ${elapsed} ms`);
});

Deno.test("a ring with a corrupt frame length closes the connection with a reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cell-ring-test-" });
  const path = `${dir}/corrupt.ring`;
  let server: RingChannel | undefined;
  const listener = await listenRing(path, (channel) => server = channel);
  try {
    const conn = await shmTransport.dial(path);
    const closed = new Promise<CellError | undefined>((resolve) =>
      conn.start({
        onFrame: (_: Frame) => {},
        onMalformed: () => {},
        onClose: resolve,
      })
    );
    while (!server) await new Promise((r) => setTimeout(r, 5));
    // A well-formed record, then its header rewritten to claim 1 MiB: past the bytes written.
    server.writer.write(new Uint8Array([0x92, 0x05, 0x01]), false);
    const u32 = new Uint32Array(server.segment.buffer);
    const capacity = u32[2]!;
    u32[(512 + capacity) / 4] = 1 << 20;
    server.notify();
    const reason = await closed;
    assert(reason instanceof CellError, "closed without a reason");
    assertEquals(reason.code, "DATA_LOSS");
    assert(/corrupt/.test(reason.message), reason.message);
    assert(conn.closed);
    server.close();
  } finally {
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sleeping side sees a record published without a wake-up, before it sleeps or soon after", async () => {
  // The race notify() may lose: the writer checks the sleep word while its publication is still
  // in its store buffer, sees nobody asleep and wakes nobody. Here it wakes nobody on purpose.
  const dir = await Deno.makeTempDir({ prefix: "cell-ring-test-" });
  const path = `${dir}/watch.ring`;
  let server: RingChannel | undefined;
  const listener = await listenRing(path, (channel) => server = channel);
  const client = await dialRing(path);
  try {
    while (!server) await new Promise((r) => setTimeout(r, 5));
    // Published before the sleep starts: the sleep ends at once, not after its 5 s.
    client.prepareSleep();
    server.writer.write(new Uint8Array([1, 2, 3]), false);
    let started = performance.now();
    assertEquals(await client.sleep(5000), 1);
    const before = performance.now() - started;
    assert(before < 1000, `slept ${before.toFixed(0)} ms past a record already there`);
    assertEquals(client.reader.next()?.length, 3);
    client.reader.release();
    // Published while it sleeps, with nobody woken: seen at its next look (every 50 ms).
    client.prepareSleep();
    started = performance.now();
    const sleeping = client.sleep(5000);
    setTimeout(() => server!.writer.write(new Uint8Array([4]), false), 100);
    assertEquals(await sleeping, 1);
    const during = performance.now() - started;
    assert(during < 2000, `slept ${during.toFixed(0)} ms past a record that arrived meanwhile`);
    assertEquals(client.reader.next()?.length, 1);
  } finally {
    client.close();
    server?.close();
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a client running as another user is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cell-ring-uid-" });
  const refusals: RingError[] = [];
  const path = `${dir}/uid.ring`;
  const listener = await listenRing(path, (channel) => channel.close(), {
    onRefused: (e) => refusals.push(e),
  });
  try {
    // Only for this test: a directory others may traverse, and a socket they may connect to.
    await Deno.chmod(dir, 0o711);
    await Deno.chmod(path, 0o666);
    const deno = `${dir}/deno`;
    await Deno.link(Deno.execPath(), deno).catch(() => Deno.copyFile(Deno.execPath(), deno));
    const lib = `${dir}/libcell_ring.so`;
    await Deno.copyFile(await (await import("@cell/ring")).ensureLibrary(), lib);
    await Deno.chmod(lib, 0o755);
    const script = `${dir}/client.ts`;
    await Deno.writeTextFile(
      script,
      `import { dialRing } from ${JSON.stringify(new URL("../ffi/mod.ts", import.meta.url).href)};
try { await dialRing(Deno.args[0]); console.log("{}"); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`,
      { mode: 0o644 },
    );
    const denoDir = `${dir}/deno_dir`;
    await Deno.mkdir(denoDir, { mode: 0o777 });
    await Deno.chmod(denoDir, 0o777);
    const out = await new Deno.Command("setpriv", {
      args: ["--reuid=nobody", "--regid=nogroup", "--clear-groups", deno, "run", "--no-config"]
        .concat(["--no-lock", "-A", script, path]),
      env: { DENO_DIR: denoDir, CELL_RING_LIB: lib, HOME: denoDir, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert(text.startsWith("{"), `client said: ${text} ${new TextDecoder().decode(out.stderr)}`);
    const result = JSON.parse(text);
    assertEquals(result.code, "PERMISSION_DENIED");
    assert(/peer uid 65534 is not the server's uid/.test(result.message), result.message);
    assertEquals(refusals.map((e) => e.code), ["PERMISSION_DENIED"]);
  } finally {
    await listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stale segment of a dead process is collected when a ring server starts", async () => {
  const exited = new Deno.Command("true").spawn();
  await exited.status;
  const stale = `${await prefix()}${exited.pid}-1-deadbeef`;
  await Deno.writeFile(`/dev/shm/${stale}`, new Uint8Array(16), { mode: 0o600 });
  const live = `${await prefix()}${Deno.pid}-999999-cafe`; // Ours: alive, so kept.
  await Deno.writeFile(`/dev/shm/${live}`, new Uint8Array(16), { mode: 0o600 });
  const dir = await Deno.makeTempDir({ prefix: "cell-ring-test-" });
  try {
    const listener = await listenRing(`${dir}/stale.ring`, (channel) => channel.close());
    await listener.close();
    const left = await ourSegments();
    assert(!left.includes(stale), "the stale segment is still there");
    assert(left.includes(live), "a live process's segment was removed");
  } finally {
    await Deno.remove(`/dev/shm/${live}`).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an idle ring connection costs under 2% of a core on either side", async () => {
  await using server = await ringServer();
  await using client = await connect<typeof Ringer>("ringer", {
    transport: shmTransport,
    address: server.address,
  });
  for (let i = 0; i < 5000; i++) await client.greet({ name: "busy" });
  await new Promise((r) => setTimeout(r, 1000));
  const ticks = (pid: number | "self") => {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (1/100 s).
  };
  const pid = server.child.process.pid;
  const [s0, c0, t0] = [ticks(pid), ticks("self"), performance.now()];
  await new Promise((r) => setTimeout(r, 2000));
  const seconds = (performance.now() - t0) / 1000;
  const serverCpu = (ticks(pid) - s0) / 100 / seconds;
  const clientCpu = (ticks("self") - c0) / 100 / seconds;
  assert(serverCpu < 0.02, `idle server used ${(serverCpu * 100).toFixed(1)}% of a core`);
  assert(clientCpu < 0.02, `idle client used ${(clientCpu * 100).toFixed(1)}% of a core`);
  assertEquals((await client.greet({ name: "again" })).greeting, "Hello, again!");
});

Deno.test("the ring tests leave no segment behind in /dev/shm", async () => {
  await new Promise((r) => setTimeout(r, 100));
  const left = (await ourSegments()).filter((n) => !before.has(n));
  assertEquals(left, []);
});

Deno.test("dialing a ring where nothing listens fails with UNAVAILABLE", async () => {
  const error = await dialRing("/nonexistent/cell.ring").catch((e) => e);
  assert(error instanceof RingError);
  assertEquals(error.code, "UNAVAILABLE");
  const sdkError = await shmTransport.dial("/nonexistent/cell.ring").catch((e) => e);
  assert(sdkError instanceof CellError);
  assertEquals(sdkError.code, "UNAVAILABLE");
});
