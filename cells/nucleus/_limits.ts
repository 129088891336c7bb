// Bounds on what one registration may carry, so that no client can make the nucleus hold
// (or send to every watcher) unbounded data.
import { CellError, checkInstanceId, type Infer } from "@cell/sdk";
import type { RegisterRequest } from "@cell/sdk/nucleus_api";

/** Most metadata entries per instance. */
export const MAX_METADATA_ENTRIES = 64;
/** Longest metadata key, in characters. */
export const MAX_METADATA_KEY = 128;
/** Longest metadata value, in characters. */
export const MAX_METADATA_VALUE = 1024;
/** Most characters of all metadata keys and values together. */
export const MAX_METADATA_TOTAL = 16 * 1024;
/** Most endpoints per instance. */
export const MAX_ENDPOINTS = 16;
/** Longest endpoint address, in characters. */
export const MAX_ADDRESS = 1024;

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

const bad = (message: string) => new CellError("INVALID_ARGUMENT", message);

/** Throws `INVALID_ARGUMENT` unless the registration's ids, endpoints and metadata are in bounds. */
export function checkRegistration(request: Infer<typeof RegisterRequest>): void {
  const { node_id, instance_id, endpoints, metadata = {} } = request;
  if (node_id !== "" && !ID.test(node_id)) {
    throw bad(
      `node_id ${JSON.stringify(node_id.slice(0, 140))} is invalid: use 1-128 letters, ` +
        "digits, '.', '_', ':' or '-' (or leave it empty for the nucleus's own)",
    );
  }
  if (instance_id !== undefined && instance_id !== "") {
    try {
      checkInstanceId(instance_id); // it names a socket: run/<cell>@<instance_id>.sock
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  if (endpoints.length > MAX_ENDPOINTS) {
    throw bad(`${endpoints.length} endpoints is too many: register at most ${MAX_ENDPOINTS}`);
  }
  for (const { transport, address } of endpoints) {
    if (transport === "" || transport.length > 32 || address.length > MAX_ADDRESS) {
      throw bad(
        `Endpoint ${JSON.stringify(`${transport.slice(0, 40)}:${address.slice(0, 80)}`)} is ` +
          `invalid: the transport must be 1-32 characters and the address at most ${MAX_ADDRESS}`,
      );
    }
  }
  const keys = Object.keys(metadata);
  if (keys.length > MAX_METADATA_ENTRIES) {
    throw bad(
      `Metadata has ${keys.length} entries: at most ${MAX_METADATA_ENTRIES} are allowed`,
    );
  }
  let total = 0;
  for (const key of keys) {
    const value = metadata[key]!;
    if (key === "" || key.length > MAX_METADATA_KEY || value.length > MAX_METADATA_VALUE) {
      throw bad(
        `Metadata entry ${JSON.stringify(key.slice(0, 40))} is too large: keys may have 1-` +
          `${MAX_METADATA_KEY} characters and values at most ${MAX_METADATA_VALUE}`,
      );
    }
    total += key.length + value.length;
  }
  if (total > MAX_METADATA_TOTAL) {
    throw bad(
      `Metadata holds ${total} characters: at most ${MAX_METADATA_TOTAL} are allowed in all; ` +
        "keep labels short and put bulk data elsewhere",
    );
  }
}
