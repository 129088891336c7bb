/**
 * The definitions of `frames.json` and `ignored.json`. Read by `generate.ts`, which computes their bytes.
 *
 * @module
 */
import { DEFAULT_MAX_FRAME } from "../../sdk/protocol.ts";
import type { Definition } from "./_meaning.ts";

const HASH = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const EXTRA_FIELDS =
  "Elements after the last one v1 defines are ignored: later versions may add some";
const NIL_AS_ABSENT = "nil in an optional field reads as absent; encoders omit the field instead";

/** One frame of each kind and variant. */
export const FRAMES: Definition[] = [
  {
    name: "HELLO from a client",
    meaning: {
      kind: "HELLO",
      version: 1,
      info: { schema_hash: HASH, peer: "billing-7f3a", agent: "cell-py/0.1.0" },
    },
  },
  {
    name: "HELLO from a server",
    meaning: {
      kind: "HELLO",
      version: 1,
      info: {
        cell: "greeter",
        schema_hash: HASH,
        max_frame: DEFAULT_MAX_FRAME,
        agent: "cell-ts/0.1.0",
      },
    },
  },
  { name: "HELLO with an empty info map", meaning: { kind: "HELLO", version: 1, info: {} } },
  {
    name: "HELLO with nil info",
    body: [0, 1, null],
    meaning: { kind: "HELLO", version: 1, info: {} },
    decode_only: true,
    note: NIL_AS_ABSENT,
  },
  {
    name: "REQUEST for greet",
    meaning: {
      kind: "REQUEST",
      id: 1,
      method: "greet",
      payload: { name: "World" },
      timeout_ms: 10000,
    },
    note: "The worked example of docs/protocol.md",
  },
  {
    name: "REQUEST with metadata",
    meaning: {
      kind: "REQUEST",
      id: 2,
      method: "greet",
      payload: { name: "World" },
      timeout_ms: 10000,
      metadata: { traceparent: TRACE, "x-tenant": "acme" },
    },
  },
  {
    name: "REQUEST with nil metadata",
    body: [1, 3, "greet", { name: "World" }, 10000, null],
    meaning: {
      kind: "REQUEST",
      id: 3,
      method: "greet",
      payload: { name: "World" },
      timeout_ms: 10000,
    },
    decode_only: true,
    note: NIL_AS_ABSENT,
  },
  {
    name: "REQUEST without a deadline",
    meaning: { kind: "REQUEST", id: 4, method: "cell.schema", payload: {}, timeout_ms: 0 },
    note: "timeout_ms 0 means no deadline",
  },
  {
    name: "REQUEST with the largest id and timeout",
    meaning: {
      kind: "REQUEST",
      id: 4294967295,
      method: "greet",
      payload: { name: "" },
      timeout_ms: 4294967295,
    },
  },
  {
    name: "REQUEST with a binary and 64-bit payload",
    meaning: {
      kind: "REQUEST",
      id: 5,
      method: "store.put",
      payload: {
        key: "k",
        blob: { $bytes: "00010203fffe" },
        seq: { $int: "18446744073709551615" },
      },
      timeout_ms: 250,
    },
  },
  {
    name: "REQUEST with a nil payload",
    meaning: { kind: "REQUEST", id: 6, method: "ping", payload: null, timeout_ms: 1000 },
    note: "The payload is not optional: nil here is the value nil",
  },
  {
    name: "RESPONSE to greet",
    meaning: { kind: "RESPONSE", id: 1, payload: { greeting: "Hello, World!" } },
    note: "The worked example of docs/protocol.md",
  },
  {
    name: "RESPONSE with a nil payload",
    meaning: { kind: "RESPONSE", id: 6, payload: null },
    note: "What a method that returns nothing answers",
  },
  {
    name: "ERROR without details",
    meaning: { kind: "ERROR", id: 7, code: 5, message: "No user with id '42': create it first" },
    note: "Code 5 is NOT_FOUND",
  },
  {
    name: "ERROR with details",
    meaning: {
      kind: "ERROR",
      id: 8,
      code: 3,
      message: "Field 'age' must be at most 150, got 200",
      details: { field: "age", max: 150, got: 200 },
    },
    note: "Code 3 is INVALID_ARGUMENT",
  },
  {
    name: "ERROR with nil details",
    body: [3, 9, 13, "Handler crashed", null],
    meaning: { kind: "ERROR", id: 9, code: 13, message: "Handler crashed" },
    decode_only: true,
    note: NIL_AS_ABSENT,
  },
  {
    name: "ERROR for the connection",
    meaning: {
      kind: "ERROR",
      id: 0,
      code: 8,
      message: "Frame of 16777217 bytes exceeds the limit of 16777216 bytes",
    },
    note: "id 0: the connection, not a call, failed. Code 8 is RESOURCE_EXHAUSTED",
  },
  {
    name: "ERROR for an unsupported protocol version",
    meaning: {
      kind: "ERROR",
      id: 0,
      code: 9,
      message: "Protocol version 2 is not supported: this server speaks version 1",
    },
    note: "Code 9 is FAILED_PRECONDITION; the server closes the connection after it",
  },
  {
    name: "ERROR with a code outside the table",
    meaning: { kind: "ERROR", id: 10, code: 99, message: "From a newer server" },
    note: "Decodes as is; the receiver maps 99 to UNKNOWN",
  },
  { name: "CANCEL", meaning: { kind: "CANCEL", id: 7 } },
  { name: "PING", meaning: { kind: "PING", id: 1 } },
  { name: "PONG", meaning: { kind: "PONG", id: 1 } },
  { name: "PING with id 0", meaning: { kind: "PING", id: 0 }, note: "PING ids are any u32" },
  { name: "PING with the largest id", meaning: { kind: "PING", id: 4294967295 } },
  {
    name: "PING exactly at a max_frame of 3 bytes",
    meaning: { kind: "PING", id: 1 },
    max_frame: 3,
    note: "A body of exactly max_frame bytes is accepted",
  },
  {
    name: "GOAWAY",
    meaning: { kind: "GOAWAY", last_id: 41, message: "Server shutting down" },
    note: "Calls 1..41 will be answered; ids above 41 were not processed",
  },
  { name: "GOAWAY before any call", meaning: { kind: "GOAWAY", last_id: 0, message: "" } },
  {
    name: "PING with a field from a later version",
    body: [5, 2, "future"],
    meaning: { kind: "PING", id: 2 },
    decode_only: true,
    note: EXTRA_FIELDS,
  },
  {
    name: "REQUEST with a field after metadata",
    body: [1, 11, "greet", { name: "World" }, 10000, { "x-tenant": "acme" }, 42],
    meaning: {
      kind: "REQUEST",
      id: 11,
      method: "greet",
      payload: { name: "World" },
      timeout_ms: 10000,
      metadata: { "x-tenant": "acme" },
    },
    decode_only: true,
    note: EXTRA_FIELDS,
  },
];

/** Well-formed bodies of kinds v1 does not define. */
export const IGNORED: Definition[] = [
  { name: "kind 8 with an id", meaning: [8, 1], note: "The first kind after GOAWAY" },
  { name: "kind 8 with more fields", meaning: [8, 1, "future", { x: [1, 2] }] },
  { name: "kind 127", meaning: [127, 0] },
  { name: "kind 255 (uint8)", meaning: [255, { $bytes: "00" }] },
  { name: "kind 1000 (uint16)", meaning: [1000, "anything", null] },
];
