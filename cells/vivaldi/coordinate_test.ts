import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Coordinate,
  estimateRtt,
  isValidCoordinate,
  originCoordinate,
  validateRtt,
  VivaldiClient,
} from "./coordinate.ts";
import { seededRandom } from "./rng.ts";

const close = (actual: number, expected: number, eps = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= eps, `expected ${expected}, got ${actual}`);

const PEER: Coordinate = { vec: [0.03, 0.04], error: 1.5, adjustment: 0, height: 0.01 };

Deno.test("update() moves a fresh coordinate exactly as computed by hand", () => {
  // Gravity off so the step is exact; defaults otherwise (ce = cc = 0.25, window 20).
  const client = new VivaldiClient({
    dimensions: 2,
    gravityRho: Infinity,
    random: seededRandom(1),
  });
  // Self: vec (0, 0), error 1.5, height 1e-5. Peer: vec (0.03, 0.04), error 1.5, height 0.01.
  // dist      = ‖(0.03, 0.04)‖ + 1e-5 + 0.01 = 0.05 + 0.01001 = 0.06001
  // wrongness = |0.06001 − 0.1| / 0.1 = 0.3999
  // weight    = 1.5 / (1.5 + 1.5) = 0.5
  // error     = 0.25·0.5·0.3999 + 1.5·(1 − 0.25·0.5) = 0.0499875 + 1.3125 = 1.3624875
  // force     = 0.25·0.5·(0.1 − 0.06001) = 0.00499875
  // unit      = (self − peer) / 0.05 = (−0.6, −0.8)
  // vec       = unit·force = (−0.00299925, −0.003999)
  // height    = (1e-5 + 0.01)·force / 0.05 + 1e-5 = 0.01001·0.099975 + 1e-5 = 0.00101074975
  // residual  = 0.1 − (0.05 + force + height + 0.01) = 0.1 − 0.06600949975 = 0.03399050025
  // adjustment = residual / (2·20) = 0.00084976250625
  const c = client.update("peer", PEER, 0.1);
  close(c.error, 1.3624875);
  close(c.vec[0]!, -0.00299925);
  close(c.vec[1]!, -0.003999);
  close(c.height, 0.00101074975);
  close(c.adjustment, 0.00084976250625);
  // estimate = raw 0.06600949975 + adjustments 0.00084976250625 + 0 = 0.06685926225625
  close(estimateRtt(c, PEER), 0.06685926225625);
});

Deno.test("update() takes a second step from the filtered median", () => {
  const client = new VivaldiClient({
    dimensions: 2,
    gravityRho: Infinity,
    adjustmentWindow: 0,
    random: seededRandom(1),
  });
  client.update("peer", PEER, 0.1);
  // Samples [0.1, 0.1] → median 0.1. From error 1.3624875, height 0.00101074975:
  // dist      = 0.05499875 + 0.00101074975 + 0.01 = 0.06600949975
  // wrongness = 0.03399050025 / 0.1 = 0.3399050025
  // weight    = 1.3624875 / 2.8624875 = 0.47598...
  // error     = 0.25·w·wrongness + 1.3624875·(1 − 0.25·w)
  const w = 1.3624875 / 2.8624875;
  const c = client.update("peer", PEER, 0.1);
  close(c.error, 0.25 * w * 0.3399050025 + 1.3624875 * (1 - 0.25 * w));
  // force = 0.25·w·0.03399050025, along (−0.6, −0.8) again.
  const force = 0.25 * w * 0.03399050025;
  close(c.vec[0]!, -0.6 * (0.00499875 + force));
  close(c.vec[1]!, -0.8 * (0.00499875 + force));
});

Deno.test("the latency filter hides a single spike behind the median of three", () => {
  const spiky = new VivaldiClient({ dimensions: 2, random: seededRandom(3) });
  const steady = new VivaldiClient({ dimensions: 2, random: seededRandom(3) });
  for (const rtt of [0.1, 0.1, 5]) spiky.update("peer", PEER, rtt);
  for (const rtt of [0.1, 0.1, 0.1]) steady.update("peer", PEER, rtt);
  assert.deepEqual(spiky.coordinate, steady.coordinate);
});

Deno.test("gravity keeps a coordinate closer to the origin than without it", () => {
  const far: Coordinate = { vec: [1, 0], error: 0.01, adjustment: 0, height: 0.01 };
  const pulled = new VivaldiClient({ dimensions: 2, gravityRho: 0.5, random: seededRandom(1) });
  const free = new VivaldiClient({ dimensions: 2, gravityRho: Infinity, random: seededRandom(1) });
  for (let i = 0; i < 20; i++) {
    pulled.update("far", far, 0.5);
    free.update("far", far, 0.5);
  }
  const norm = (c: Coordinate) => Math.hypot(...c.vec);
  assert.ok(norm(pulled.coordinate) < norm(free.coordinate));
});

Deno.test("co-located nodes are pushed apart in a direction from the injected PRNG", () => {
  const a = new VivaldiClient({ dimensions: 3, random: seededRandom(9) });
  const b = new VivaldiClient({ dimensions: 3, random: seededRandom(9) });
  const at = a.update("o", originCoordinate(3), 0.05);
  assert.deepEqual(at, b.update("o", originCoordinate(3), 0.05));
  assert.ok(Math.hypot(...at.vec) > 0);
});

Deno.test("validateRtt() rejects zero, negative, NaN, infinite and absurd RTTs", () => {
  for (const bad of [0, -0.01, NaN, Infinity, -Infinity, 10.5, 1e9]) {
    assert.throws(() => validateRtt(bad), RangeError, String(bad));
  }
  validateRtt(10);
  validateRtt(1e-4);
  assert.throws(() => validateRtt(NaN), /got NaN: drop the sample or check the unit/);
});

Deno.test("update() rejects peers of another dimension or with non-finite coordinates", () => {
  const client = new VivaldiClient({ dimensions: 2, random: seededRandom(1) });
  assert.throws(() => client.update("p", originCoordinate(3), 0.1), TypeError);
  assert.throws(() => client.update("p", { ...PEER, vec: [NaN, 0] }, 0.1), RangeError);
  assert.throws(() => client.update("p", { ...PEER, height: Infinity }, 0.1), RangeError);
  assert.deepEqual(client.coordinate, originCoordinate(2));
});

Deno.test("a coordinate that overflows to Infinity or NaN is reset to the origin", () => {
  const client = new VivaldiClient({ dimensions: 2, random: seededRandom(1) });
  const huge: Coordinate = { vec: [1e200, 1e200], error: 0.1, adjustment: 0, height: 0.01 };
  const c = client.update("huge", huge, 0.1);
  assert.equal(client.resets, 1);
  assert.ok(isValidCoordinate(c));
  assert.deepEqual(c, originCoordinate(2));
});

Deno.test("no sequence of garbage interleaved with good samples makes a coordinate non-finite", () => {
  const good = fc.record({
    kind: fc.constant("good" as const),
    peer: fc.nat(3),
    rtt: fc.double({ min: 1e-4, max: 10, noNaN: true }),
  });
  const garbage = fc.record({
    kind: fc.constant("garbage" as const),
    peer: fc.nat(3),
    rtt: fc.constantFrom(0, -0, -1, NaN, Infinity, -Infinity, 10.001, 1e300, -1e-9),
  });
  const badPeer = fc.record({
    kind: fc.constant("badPeer" as const),
    peer: fc.nat(3),
    rtt: fc.constantFrom(NaN, Infinity, -Infinity),
  });
  fc.assert(
    fc.property(
      fc.array(fc.oneof(good, garbage, badPeer), { maxLength: 60 }),
      fc.integer(),
      (ops, seed) => {
        const random = seededRandom(seed);
        const nodes = Array.from({ length: 4 }, () => new VivaldiClient({ dimensions: 3, random }));
        const self = new VivaldiClient({ dimensions: 3, random });
        for (const op of ops) {
          const peer = nodes[op.peer]!;
          const before = self.coordinate;
          if (op.kind === "good") {
            self.update(String(op.peer), peer.coordinate, op.rtt);
            peer.update("self", self.coordinate, op.rtt);
          } else {
            const coord = op.kind === "badPeer"
              ? { ...peer.coordinate, vec: [op.rtt, 0, 0] }
              : peer.coordinate;
            const rtt = op.kind === "badPeer" ? 0.1 : op.rtt;
            assert.throws(() => self.update(String(op.peer), coord, rtt));
            assert.equal(self.coordinate, before);
          }
          assert.ok(isValidCoordinate(self.coordinate), JSON.stringify(self.coordinate));
          assert.ok(isValidCoordinate(self.smoothedCoordinate));
          assert.ok(nodes.every((n) => isValidCoordinate(n.coordinate)));
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("coordinates converge on a 2D grid with Euclidean RTTs", () => {
  const random = seededRandom(5);
  const side = 6;
  const points = Array.from({ length: side * side }, (_, i) => [i % side, Math.floor(i / side)]);
  const rtt = (i: number, j: number) =>
    0.02 * Math.hypot(points[i]![0]! - points[j]![0]!, points[i]![1]! - points[j]![1]!);
  const clients = points.map(() => new VivaldiClient({ dimensions: 2, random }));
  for (let round = 0; round < 300; round++) {
    clients.forEach((client, i) => {
      let j = i;
      while (j === i) j = Math.floor(random() * clients.length);
      client.update(String(j), clients[j]!.coordinate, rtt(i, j));
    });
  }
  const errors: number[] = [];
  for (let i = 0; i < clients.length; i++) {
    for (let j = i + 1; j < clients.length; j++) {
      const est = estimateRtt(clients[i]!.coordinate, clients[j]!.coordinate);
      errors.push(Math.abs(est - rtt(i, j)) / rtt(i, j));
    }
  }
  errors.sort((a, b) => a - b);
  const median = errors[Math.floor(errors.length / 2)]!;
  assert.ok(median < 0.05, `median relative error ${median}`);
});

Deno.test("VivaldiClient rejects nonsensical options", () => {
  const random = seededRandom(1);
  assert.throws(() => new VivaldiClient({ dimensions: 0, random }), RangeError);
  assert.throws(() => new VivaldiClient({ dimensions: 1.5, random }), RangeError);
  assert.throws(() => new VivaldiClient({ latencyFilterSize: 0, random }), RangeError);
  assert.throws(() => new VivaldiClient({ adjustmentWindow: -1, random }), RangeError);
  for (const smoothing of [0, -0.1, 1.5, NaN]) {
    assert.throws(() => new VivaldiClient({ smoothing, random }), /Smoothing must be in \(0, 1\]/);
  }
});

Deno.test("smoothedCoordinate is the raw coordinate at first, then its moving average", () => {
  const options = { dimensions: 2, gravityRho: Infinity, random: seededRandom(1) };
  const raw = new VivaldiClient({ ...options, smoothing: 1 });
  const client = new VivaldiClient({ ...options, smoothing: 0.25 });
  assert.deepEqual(client.smoothedCoordinate, originCoordinate(2));
  const steps = [0.1, 0.12, 0.08, 0.11, 0.1, 0.09].map((rtt) => {
    assert.deepEqual(client.update("peer", PEER, rtt), raw.update("peer", PEER, rtt));
    return { raw: raw.coordinate, smoothed: client.smoothedCoordinate };
  });
  // Weight max(0.25, 1/n): the plain mean of the first four positions, then exponential.
  assert.deepEqual(steps[0]!.smoothed, steps[0]!.raw);
  const mean = (k: number, f: (c: Coordinate) => number) =>
    steps.slice(0, k).reduce((s, x) => s + f(x.raw), 0) / k;
  close(steps[1]!.smoothed.vec[0]!, mean(2, (c) => c.vec[0]!), 1e-15);
  close(steps[3]!.smoothed.height, mean(4, (c) => c.height), 1e-15);
  close(steps[3]!.smoothed.adjustment, mean(4, (c) => c.adjustment), 1e-15);
  const fifth = steps[3]!.smoothed.vec[1]! * 0.75 + steps[4]!.raw.vec[1]! * 0.25;
  close(steps[4]!.smoothed.vec[1]!, fifth, 1e-15);
  // The error is the current one, not an average: it says how far to trust the estimate now.
  assert.equal(steps[5]!.smoothed.error, steps[5]!.raw.error);
  // Smoothing 1 reports the raw coordinate itself.
  assert.equal(raw.smoothedCoordinate, raw.coordinate);
});

Deno.test("a rejected sample or a reset never puts NaN into the smoothed coordinate", () => {
  const client = new VivaldiClient({ dimensions: 2, random: seededRandom(1) });
  for (let i = 0; i < 5; i++) client.update("peer", PEER, 0.1);
  const before = client.smoothedCoordinate;
  assert.throws(() => client.update("peer", { ...PEER, vec: [NaN, 0] }, 0.1), RangeError);
  assert.throws(() => client.update("peer", PEER, NaN), RangeError);
  assert.equal(client.smoothedCoordinate, before);
  const huge: Coordinate = { vec: [1e200, 1e200], error: 0.1, adjustment: 0, height: 0.01 };
  client.update("huge", huge, 0.1);
  assert.equal(client.resets, 1);
  assert.deepEqual(client.smoothedCoordinate, originCoordinate(2));
  client.update("peer", PEER, 0.1);
  assert.ok(isValidCoordinate(client.smoothedCoordinate));
  assert.deepEqual(client.smoothedCoordinate, client.coordinate);
});
