/**
 * Baseline: Moleculer over its built-in TCP transporter. The server broker
 * (serving `greeter.greet`) runs in a forked child process; the client broker
 * runs here and calls it over 127.0.0.1.
 *
 * Setup: UDP discovery off, static `urls` pointing at the server's port,
 * logger off, the default JSON serializer (`--serializer NAME` picks another
 * Moleculer serializer such as `CBOR`, `Notepack` or `MsgPack`; those need
 * their optional package installed). Every peer address is pinned to
 * 127.0.0.1 so the transporter never dials the hostname or a LAN address it
 * learns from node INFO packets.
 *
 * Usage: `node bench/baselines/moleculer_tcp.mjs [--serializer JSON]
 * [--iterations N] [--warmup N] [--duration-ms N] [--warmup-ms N]
 * [--concurrency N]`
 *
 * Prints one JSON line: `p50_us`, `p99_us`, `ops_s_64` (throughput at
 * `concurrency` in flight, default 64) plus `p999_us`, `mean_us`,
 * `iterations`, `concurrency`.
 *
 * @module
 */

import { createRequire } from "node:module";
import process from "node:process";
import { measureLatency, measureThroughput } from "../_measure.mjs";
import { assertGreeting, GREET_REQUEST, greeterService } from "./_greeter.mjs";
import {
  argValue,
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
const { ServiceBroker, Transporters } = require("moleculer");

const SERVER_NODE = "bench-server";
const LOOPBACK = "127.0.0.1";
const serializer = argValue("--serializer", "JSON");

/** TCP transporter that only ever connects to the loopback address. */
class LoopbackTcpTransporter extends Transporters.TCP {
  /**
   * @override
   * @returns {string}
   */
  getNodeAddress() {
    return LOOPBACK;
  }
}

/**
 * Creates a broker on the loopback TCP transporter.
 *
 * @param {string} nodeID
 * @param {string[] | null} urls Static peer list (`host:port/nodeID`).
 * @returns {ServiceBroker}
 */
function makeBroker(nodeID, urls) {
  return new ServiceBroker({
    nodeID,
    logger: false,
    serializer,
    transporter: new LoopbackTcpTransporter({ udpDiscovery: false, port: 0, urls }),
  });
}

if (isServer()) {
  await serveChild("moleculer_tcp", async () => {
    const broker = makeBroker(SERVER_NODE, null);
    broker.createService(greeterService);
    await broker.start();
    const tx = /** @type {{ opts: { port: number } }} */ (broker.transit?.tx);
    return { port: tx.opts.port };
  });
} else {
  await runClient("moleculer_tcp", async () => {
    const opts = benchOptions();
    process.stderr.write(`moleculer_tcp: serializer ${serializer}\n`);
    const { child, info } = await forkServer(import.meta.url, ["--serializer", serializer]);
    const broker = makeBroker("bench-client", [`${LOOPBACK}:${info.port}/${SERVER_NODE}`]);
    await broker.start();
    try {
      await broker.waitForServices("greeter", 10_000);
      const call = () => broker.call("greeter.greet", GREET_REQUEST);
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
      await broker.stop();
      await stopServer(child);
    }
  });
}
