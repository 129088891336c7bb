/**
 * Baseline: gRPC unary call with @grpc/grpc-js, the service loaded from
 * `greeter.proto` with @grpc/proto-loader (protobuf on the wire), the way the
 * grpc-js examples set it up. The server runs in a forked child process on
 * 127.0.0.1 with insecure credentials; the client is one channel here.
 *
 * Usage: `node bench/baselines/grpc_js.mjs [--iterations N] [--warmup N]
 * [--duration-ms N] [--warmup-ms N] [--concurrency N]`
 *
 * Prints one JSON line: `p50_us`, `p99_us`, `ops_s_64` (throughput at
 * `concurrency` in flight, default 64) plus `p999_us`, `mean_us`,
 * `iterations`, `concurrency`.
 *
 * @module
 */

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { measureLatency, measureThroughput } from "../_measure.mjs";
import { assertGreeting, GREET_REQUEST, greeting } from "./_greeter.mjs";
import {
  benchOptions,
  forkServer,
  isServer,
  runClient,
  serveChild,
  stopServer,
} from "./_harness.mjs";

// These packages live in bench/baselines/node_modules, installed by npm. They
// are CommonJS and loaded with require() so that `deno check bench/`, which
// walks these files too, does not try to resolve them as Deno dependencies.
const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const LOOPBACK = "127.0.0.1";

/**
 * The parts of the generated grpc-js client this benchmark uses.
 *
 * @typedef {object} GreeterClient
 * @property {(req: { name: string }, cb: (err: Error | null, res: unknown) => void) => void} Greet
 * @property {(deadline: number, cb: (err?: Error) => void) => void} waitForReady
 * @property {() => void} close
 */

/**
 * Loads the `cell.bench.Greeter` service constructor from `greeter.proto`.
 *
 * @returns {{ new (address: string, credentials: unknown): GreeterClient, service: unknown }}
 */
function loadGreeter() {
  const definition = protoLoader.loadSync(
    fileURLToPath(new URL("./greeter.proto", import.meta.url)),
    { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(definition).cell.bench.Greeter;
}

if (isServer()) {
  await serveChild("grpc_js", () => {
    const Greeter = loadGreeter();
    const server = new grpc.Server();
    server.addService(Greeter.service, {
      /**
       * Unary handler: `GreetRequest` -> `GreetReply`.
       *
       * @param {{ request: { name: string } }} call
       * @param {(err: Error | null, reply: { greeting: string }) => void} callback
       */
      Greet(call, callback) {
        callback(null, { greeting: greeting(call.request.name) });
      },
    });
    return new Promise((resolve, reject) => {
      server.bindAsync(
        `${LOOPBACK}:0`,
        grpc.ServerCredentials.createInsecure(),
        (err, port) => (err ? reject(err) : resolve({ port })),
      );
    });
  });
} else {
  await runClient("grpc_js", async () => {
    const opts = benchOptions();
    const { child, info } = await forkServer(import.meta.url);
    const Greeter = loadGreeter();
    const client = new Greeter(`${LOOPBACK}:${info.port}`, grpc.credentials.createInsecure());
    try {
      await new Promise((resolve, reject) => {
        client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve(undefined)));
      });
      const greet = client.Greet.bind(client);
      const call = () =>
        new Promise((resolve, reject) => {
          greet(GREET_REQUEST, (err, res) => (err ? reject(err) : resolve(res)));
        });
      assertGreeting(await call());
      const lat = await measureLatency(call, opts);
      const thr = await measureThroughput(call, opts);
      return {
        p50_us: lat.p50_us,
        p99_us: lat.p99_us,
        ops_s_64: thr.ops_s,
        p999_us: lat.p999_us,
        mean_us: lat.mean_us,
        iterations: lat.iterations,
        concurrency: thr.concurrency,
      };
    } finally {
      client.close();
      await stopServer(child);
    }
  });
}
