// Hostile and broken peers, spoken to over a raw Unix socket.
import { CellError, CODE_NUMBERS, connect, serve } from "@cell/sdk";
import {
  decodeFrameBody,
  encodeFrame,
  type Frame,
  FrameKind,
  FrameReader,
  PROTOCOL_VERSION,
} from "@cell/sdk/protocol";
import { tempCellHome } from "@cell/sdk/testing";
import { Greeter } from "./fixtures/cells.ts";
import { assert, assertEquals } from "./_helpers.ts";

const greeter = Greeter.implement({ greet: ({ name }) => ({ greeting: `Hello, ${name}!` }) });
const HELLO: Frame = { kind: FrameKind.HELLO, version: PROTOCOL_VERSION, info: { peer: "raw" } };

/** A client that writes whatever bytes it is told to and reads frames back. */
class RawClient implements AsyncDisposable {
  #conn: Deno.UnixConn;
  #reader = new FrameReader();
  #eof = false;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }

  static async open(path: string): Promise<RawClient> {
    return new RawClient(await Deno.connect({ transport: "unix", path }));
  }

  async write(bytes: Uint8Array | Frame): Promise<void> {
    const data = bytes instanceof Uint8Array ? bytes : encodeFrame(bytes);
    let offset = 0;
    while (offset < data.length) offset += await this.#conn.write(data.subarray(offset));
  }

  /** The next frame, or null once the server closed the connection. */
  async read(timeoutMs = 3000): Promise<Frame | null> {
    const end = Date.now() + timeoutMs;
    while (true) {
      const body = this.#reader.next();
      if (body) {
        const frame = decodeFrameBody(body);
        if (frame && "kind" in frame) return frame;
        continue;
      }
      if (this.#eof) return null;
      if (Date.now() > end) throw new Error("No frame in time");
      const n = await this.#conn.read(this.#reader.writable());
      if (n === null) this.#eof = true;
      else this.#reader.commit(n);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Closed by the server.
    }
    return Promise.resolve();
  }
}

async function withServer(fn: (socket: string) => Promise<void>): Promise<void> {
  await using home = await tempCellHome();
  await using _server = await serve("greeter", greeter, { handleSignals: false, maxFrame: 4096 });
  await fn(`${home.path}/run/greeter.sock`);
  // Whatever happened, the server still serves a well-behaved client.
  await using client = await connect<typeof Greeter>("greeter", { transport: "uds" });
  assertEquals((await client.greet({ name: "after" })).greeting, "Hello, after!");
}

function frameOf(body: number[]): Uint8Array {
  return new Uint8Array([0, 0, body.length >> 8, body.length & 0xff, ...body]);
}

Deno.test("a body that is not MessagePack gets an ERROR and the connection stays usable", async () => {
  await withServer(async (socket) => {
    await using raw = await RawClient.open(socket);
    await raw.write(HELLO);
    assertEquals((await raw.read())?.kind, FrameKind.HELLO);
    await raw.write(frameOf([0xc1, 0xc1, 0xc1])); // 0xc1 is never valid MessagePack.
    const error = await raw.read();
    assert(error?.kind === FrameKind.ERROR);
    assertEquals([error.id, error.code], [0, CODE_NUMBERS.INVALID_ARGUMENT]);
    await raw.write({
      kind: FrameKind.REQUEST,
      id: 5,
      method: "greet",
      payload: { name: "raw" },
      timeoutMs: 1000,
    });
    const response = await raw.read();
    assert(response?.kind === FrameKind.RESPONSE);
    assertEquals([response.id, response.payload], [5, { greeting: "Hello, raw!" }]);
  });
});

Deno.test("a REQUEST of the wrong shape is refused under its own call id", async () => {
  await withServer(async (socket) => {
    await using raw = await RawClient.open(socket);
    await raw.write(HELLO);
    await raw.read();
    await raw.write(frameOf([0x95, 0x01, 0x07, 0x2a, 0x80, 0x00])); // method is 42, not a string
    const error = await raw.read();
    assert(error?.kind === FrameKind.ERROR);
    assertEquals([error.id, error.code], [7, CODE_NUMBERS.INVALID_ARGUMENT]);
  });
});

Deno.test("a REQUEST before HELLO fails with FAILED_PRECONDITION", async () => {
  await withServer(async (socket) => {
    await using raw = await RawClient.open(socket);
    await raw.write({ kind: FrameKind.REQUEST, id: 1, method: "greet", payload: {}, timeoutMs: 0 });
    const error = await raw.read();
    assert(error?.kind === FrameKind.ERROR);
    assertEquals([error.id, error.code], [1, CODE_NUMBERS.FAILED_PRECONDITION]);
  });
});

Deno.test("an unsupported protocol version is refused and the connection closed", async () => {
  await withServer(async (socket) => {
    await using raw = await RawClient.open(socket);
    await raw.write({ kind: FrameKind.HELLO, version: 99, info: {} });
    const error = await raw.read();
    assert(error?.kind === FrameKind.ERROR);
    assertEquals([error.id, error.code], [0, CODE_NUMBERS.FAILED_PRECONDITION]);
    assert(error.message.includes("99"), error.message);
    assertEquals(await raw.read(), null);
  });
});

Deno.test("an oversized length prefix gets RESOURCE_EXHAUSTED and the connection closes", async () => {
  await withServer(async (socket) => {
    await using raw = await RawClient.open(socket);
    await raw.write(HELLO);
    await raw.read();
    await raw.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    const error = await raw.read();
    assert(error?.kind === FrameKind.ERROR);
    assertEquals([error.id, error.code], [0, CODE_NUMBERS.RESOURCE_EXHAUSTED]);
    assertEquals(await raw.read(), null);
  });
});

Deno.test("a duplicate call id in flight is refused", async () => {
  await using home = await tempCellHome();
  const { labHandlers } = await import("./fixtures/cells.ts");
  await using _server = await serve("lab", labHandlers(), { handleSignals: false });
  await using raw = await RawClient.open(`${home.path}/run/lab.sock`);
  await raw.write(HELLO);
  await raw.read();
  const request: Frame = {
    kind: FrameKind.REQUEST,
    id: 9,
    method: "run",
    payload: { delay_ms: 200, tag: 1 },
    timeoutMs: 5000,
  };
  await raw.write(request);
  await raw.write(request);
  const first = await raw.read();
  assert(first?.kind === FrameKind.ERROR, JSON.stringify(first));
  assertEquals([first.id, first.code], [9, CODE_NUMBERS.INVALID_ARGUMENT]);
  const second = await raw.read();
  assert(second?.kind === FrameKind.RESPONSE);
});

Deno.test("random bytes from many peers never take the server down", async () => {
  await withServer(async (socket) => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 40; i++) {
      await using raw = await RawClient.open(socket);
      if (i % 2) await raw.write(HELLO);
      const bytes = new Uint8Array(8 + Math.floor(random() * 300));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      // Keep most length prefixes plausible so that bodies actually get decoded.
      if (i % 3 === 0) bytes.set([0, 0, 0, Math.min(255, bytes.length - 4)], 0);
      await raw.write(bytes).catch(() => {});
    }
  });
});

Deno.test("a peer that never says HELLO makes connect fail with UNAVAILABLE in time", async () => {
  await using home = await tempCellHome();
  const path = `${home.path}/mute.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) accepted.push(conn);
  })().catch(() => {});
  try {
    const started = Date.now();
    const error = await connect("mute", { address: path, connectTimeoutMs: 300 }).catch((e) => e);
    assert(error instanceof CellError && error.code === "UNAVAILABLE", String(error));
    assert(error.message.includes("HELLO"), error.message);
    assert(Date.now() - started < 3000);
  } finally {
    listener.close();
    for (const conn of accepted) conn.close();
  }
});

Deno.test("a server that greets but never answers makes calls fail with DEADLINE_EXCEEDED", async () => {
  await using home = await tempCellHome();
  const path = `${home.path}/silent.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      accepted.push(conn);
      await conn.write(
        encodeFrame({ kind: FrameKind.HELLO, version: 1, info: { cell: "silent" } }),
      );
    }
  })().catch(() => {});
  try {
    await using client = await connect("silent", { address: path, timeoutMs: 200 });
    const error = await client.$call("greet", {}).catch((e) => e);
    assert(error instanceof CellError && error.code === "DEADLINE_EXCEEDED", String(error));
  } finally {
    listener.close();
    for (const conn of accepted) conn.close();
  }
});

Deno.test("the server answers DEADLINE_EXCEEDED itself when a call outlives its deadline", async () => {
  await using home = await tempCellHome();
  const { Lab } = await import("./fixtures/cells.ts");
  let finished = false;
  // A handler that ignores its signal: only the server's own deadline can answer the caller.
  const stubborn = Lab.implement({
    run: async () => {
      await new Promise((r) => setTimeout(r, 1500));
      finished = true;
      return {};
    },
    retryable: () => ({}),
  });
  await using _server = await serve("stubborn", stubborn, { handleSignals: false });
  await using raw = await RawClient.open(`${home.path}/run/stubborn.sock`);
  await raw.write(HELLO);
  await raw.read();
  const started = Date.now();
  await raw.write({ kind: FrameKind.REQUEST, id: 3, method: "run", payload: {}, timeoutMs: 100 });
  const error = await raw.read();
  assert(error?.kind === FrameKind.ERROR, JSON.stringify(error));
  assertEquals([error.id, error.code], [3, CODE_NUMBERS.DEADLINE_EXCEEDED]);
  assert(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
  assert(!finished);
  await new Promise((r) => setTimeout(r, 1600)); // let the handler end before the server stops
});
