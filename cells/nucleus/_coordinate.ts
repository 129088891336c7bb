// What the nucleus accepts as a network coordinate, and when a new one is worth announcing.
import { CellError, type Infer } from "@cell/sdk";
import type { Coordinate } from "@cell/sdk/nucleus_api";

/** Most dimensions of a coordinate (serf uses 8). */
export const MAX_COORDINATE_DIMENSIONS = 32;

/** Throws `INVALID_ARGUMENT` unless `c` is a coordinate worth keeping: finite, in bounds. */
export function checkCoordinate(c: Infer<typeof Coordinate>): void {
  const fields = [c.error, c.adjustment, c.height];
  if (
    c.vec.length === 0 || c.vec.length > MAX_COORDINATE_DIMENSIONS ||
    !c.vec.every(Number.isFinite) || !fields.every(Number.isFinite) || c.error < 0 ||
    c.height < 0
  ) {
    throw new CellError(
      "INVALID_ARGUMENT",
      `Coordinate ${JSON.stringify(c).slice(0, 200)} is invalid: it needs 1-` +
        `${MAX_COORDINATE_DIMENSIONS} finite dimensions, a finite error and height >= 0`,
    );
  }
}

/**
 * Whether `next` moved far enough from `last` for watchers to hear of it: 1 ms, or 5% of its
 * distance from the origin. Coordinates drift a little with every sample; waking every
 * watcher for that would turn each heartbeat into a broadcast.
 */
export function movedFar(
  last: Infer<typeof Coordinate> | undefined,
  next: Infer<typeof Coordinate>,
): boolean {
  if (last === undefined || last.vec.length !== next.vec.length) return true;
  let d2 = 0;
  let n2 = 0;
  for (let i = 0; i < next.vec.length; i++) {
    d2 += (next.vec[i]! - last.vec[i]!) ** 2;
    n2 += next.vec[i]! ** 2;
  }
  const moved = Math.sqrt(d2) + Math.abs(next.height - last.height) +
    Math.abs(next.adjustment - last.adjustment);
  return moved > Math.max(0.001, 0.05 * (Math.sqrt(n2) + next.height));
}
