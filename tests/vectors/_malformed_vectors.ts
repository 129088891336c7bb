/**
 * The definitions of `malformed.json`. Read by `generate.ts`, which computes their bytes.
 *
 * @module
 */
import { DEFAULT_MAX_FRAME } from "../../sdk/protocol.ts";
import type { Definition, Json } from "./_meaning.ts";

const REQ = (...fields: Json[]): Json => [1, ...fields];
const TOO_LARGE = "The receiver sends ERROR id 0 RESOURCE_EXHAUSTED and closes the connection";
const BODY_NOT_NEEDED = "Only the length prefix is given: the receiver must decide before the body";

/** Input a receiver must refuse, with the outcome it must reach. */
export const MALFORMED: Definition[] = [
  { name: "empty body", hex: "00000000", meaning: "A zero-length body holds no value" },
  { name: "body is the never-used byte 0xc1", hex: "00000001c1", meaning: "Not MessagePack" },
  {
    name: "body is truncated",
    hex: "000000029305",
    meaning: "An array of 3 elements that ends after the first",
  },
  {
    name: "body has bytes after the array",
    hex: "00000004920501c0",
    meaning: "[5, 1] then a stray nil: a body holds exactly one value",
  },
  { name: "body is a map", body: { kind: 5, id: 1 }, meaning: "The body must be an array" },
  { name: "body is an integer", body: 5, meaning: "The body must be an array" },
  { name: "array of one element", body: [5], meaning: "Every frame has a kind and a field" },
  { name: "kind is a string", body: ["PING", 1], meaning: "The kind must be an integer" },
  { name: "kind is negative", body: [-1, 1], meaning: "The kind must be non-negative" },
  { name: "kind is a float", body: [1.5, 1], meaning: "The kind must be an integer" },
  {
    name: "kind is beyond 2^53",
    body: [{ $int: "18446744073709551615" }, 1],
    meaning: "The kind must be an integer a receiver can compare; 2^64-1 is no kind",
  },
  {
    name: "kind is a timestamp",
    hex: "00000008" + "92d6ff0000000001",
    meaning: "[timestamp 1970-01-01T00:00:01Z, 1]: extension types have no place in v1 frames",
  },
  {
    name: "kind is an extension that msgpackr reads as a reference",
    hex: "0000000f" + "92d66900000001" + "91d67000000001" + "01",
    meaning: "[ext 0x69, [ext 0x70]] then a stray byte; msgpackr reads a self-referencing array",
    note: "v1 uses no extension types; msgpackr's structured-clone extensions build cycles",
  },
  { name: "HELLO version is a string", body: [0, "1", {}], meaning: "The version is an integer" },
  { name: "HELLO info is an array", body: [0, 1, []], meaning: "The info must be a map" },
  {
    name: "HELLO info is binary",
    body: [0, 1, { $bytes: "0102" }],
    meaning: "The info must be a map",
  },
  {
    name: "REQUEST id 0",
    body: REQ(0, "greet", {}, 1000),
    meaning: "Call ids start at 1; 0 is the connection",
    note: "No call to answer: the ERROR goes out with id 0",
  },
  { name: "REQUEST id is negative", body: REQ(-7, "greet", {}, 1000), meaning: "Ids are u32" },
  {
    name: "REQUEST id is beyond 2^32-1",
    body: REQ(4294967296, "greet", {}, 1000),
    meaning: "Ids are u32",
  },
  { name: "REQUEST id is a string", body: REQ("7", "greet", {}, 1000), meaning: "Ids are u32" },
  {
    name: "REQUEST method is not a string",
    body: REQ(7, 42, {}, 1000),
    meaning: "The method is a string",
    call_id: 7,
  },
  {
    name: "REQUEST without timeout",
    body: REQ(7, "greet", { name: "World" }),
    meaning: "timeout_ms is required; 0 means no deadline",
    call_id: 7,
  },
  {
    name: "REQUEST timeout is nil",
    body: REQ(7, "greet", {}, null),
    meaning: "timeout_ms is required; 0 means no deadline",
    call_id: 7,
  },
  {
    name: "REQUEST timeout is negative",
    body: REQ(7, "greet", {}, -1),
    meaning: "timeout_ms is a u32",
    call_id: 7,
  },
  {
    name: "REQUEST timeout is a fraction",
    body: REQ(7, "greet", {}, 1.5),
    meaning: "timeout_ms is a u32",
    call_id: 7,
  },
  {
    name: "REQUEST timeout is beyond 2^32-1",
    body: REQ(7, "greet", {}, 4294967296),
    meaning: "timeout_ms is a u32",
    call_id: 7,
  },
  {
    name: "REQUEST metadata is an array",
    body: REQ(7, "greet", {}, 1000, ["traceparent"]),
    meaning: "Metadata is a map of strings to strings",
    call_id: 7,
  },
  {
    name: "REQUEST metadata value is an integer",
    body: REQ(7, "greet", {}, 1000, { retry: 1 }),
    meaning: "Metadata is a map of strings to strings",
    call_id: 7,
  },
  {
    name: "REQUEST metadata is a string",
    body: REQ(7, "greet", {}, 1000, "traceparent"),
    meaning: "Metadata is a map of strings to strings",
    call_id: 7,
  },
  {
    name: "REQUEST metadata is binary",
    body: REQ(7, "greet", {}, 1000, { $bytes: "00" }),
    meaning: "Metadata is a map of strings to strings",
    call_id: 7,
  },
  { name: "RESPONSE without payload", body: [2, 7], meaning: "A RESPONSE carries a payload" },
  { name: "ERROR code is a string", body: [3, 7, "NOT_FOUND", "x"], meaning: "Codes are numbers" },
  { name: "ERROR without message", body: [3, 7, 5], meaning: "An ERROR carries a message" },
  { name: "CANCEL id is a string", body: [4, "7"], meaning: "Ids are u32" },
  { name: "PING id is negative", body: [5, -1], meaning: "Ids are u32" },
  { name: "PONG id is nil", body: [6, null], meaning: "Ids are u32" },
  { name: "GOAWAY last_id is a string", body: [7, "41", "bye"], meaning: "last_id is a u32" },
  {
    name: "length one byte over the default max_frame",
    hex: "01000001",
    meaning: "A body of 16777217 bytes announced to a receiver that accepts 16777216",
    expect: "frame_too_large",
    max_frame: DEFAULT_MAX_FRAME,
    note: `${BODY_NOT_NEEDED}. ${TOO_LARGE}`,
  },
  {
    name: "length 2^32-1",
    hex: "ffffffff",
    meaning: "The largest length a prefix can announce",
    expect: "frame_too_large",
    max_frame: DEFAULT_MAX_FRAME,
    note: `${BODY_NOT_NEEDED}. ${TOO_LARGE}`,
  },
  {
    name: "length over an advertised max_frame of 1024",
    hex: "000004019205",
    meaning: "A body of 1025 bytes announced to a receiver that advertised max_frame 1024",
    expect: "frame_too_large",
    max_frame: 1024,
    note: `The first body bytes have arrived; they change nothing. ${TOO_LARGE}`,
  },
];
