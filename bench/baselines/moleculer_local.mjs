/**
 * Baseline: Moleculer in-process call. One ServiceBroker, no transporter,
 * logger off; measures `broker.call("greeter.greet", { name: "World" })`.
 *
 * Usage: `node bench/baselines/moleculer_local.mjs [--iterations N]
 * [--warmup N] [--duration-ms N] [--warmup-ms N] [--concurrency N]`
 *
 * Prints one JSON line: `ops_s` (at `concurrency` calls in flight, default 64),
 * `concurrency`, `ops_s_seq` (one call at a time) and the latency fields.
 *
 * @module
 */

import { createRequire } from "node:module";
import { measureLatency, measureThroughput } from "../_measure.mjs";
import { assertGreeting, GREET_REQUEST, greeterService } from "./_greeter.mjs";
import { benchOptions, runClient } from "./_harness.mjs";

// These packages live in bench/baselines/node_modules, installed by npm. They
// are CommonJS and loaded with require() so that `deno check bench/`, which
// walks these files too, does not try to resolve them as Deno dependencies.
const require = createRequire(import.meta.url);
const { ServiceBroker } = require("moleculer");

await runClient("moleculer_local", async () => {
  const opts = benchOptions();
  const broker = new ServiceBroker({ nodeID: "bench-local", logger: false });
  broker.createService(greeterService);
  await broker.start();
  try {
    const call = () => broker.call("greeter.greet", GREET_REQUEST);
    assertGreeting(await call());
    const lat = await measureLatency(call, opts);
    const thr = await measureThroughput(call, opts);
    return {
      ops_s: thr.ops_s,
      concurrency: thr.concurrency,
      ops_s_seq: Math.round(1e6 / lat.mean_us),
      ...lat,
    };
  } finally {
    await broker.stop();
  }
});
