/**
 * The consensus cell: a Raft cluster for strongly consistent key-value state.
 *
 * Run three members (`cell deploy consensus cells/consensus/main.ts --instances 3`, or
 * `deno run -A cells/consensus/main.ts --id n1 --members n1,n2,n3` per member), then call them
 * through {@linkcode connectConsensus}, which sends writes to the leader and waits out
 * elections, or from the shell with `cell consensus get|put|status|members`.
 *
 * ```ts ignore
 * import { connectConsensus } from "@cell/consensus";
 *
 * await using kv = await connectConsensus();
 * await kv.write({ key: "greeting", value: "hello" });
 * const { value } = await kv.read({ key: "greeting" }); // linearizable
 * const lock = await kv.cas({ key: "lock", expected: null, value: "me" });
 * console.log(value, lock.ok, (await kv.status()).leader);
 * ```
 *
 * @module
 */
export type * from "./types.ts";
export { NotLeaderError } from "./types.ts";
export {
  CasRequest,
  Consensus,
  CONSENSUS_CELL,
  DeleteRequest,
  Empty,
  MemberRequest,
  Members,
  MemberStatus,
  type NotLeaderDetails,
  notLeaderError,
  notLeaderOf,
  RaftBatch,
  ReadRequest,
  ReadResult,
  toCellError,
  WriteRequest,
  WriteResult,
} from "./service.ts";
export {
  connectConsensus,
  type ConsensusClient,
  type ConsensusClientOptions,
  type MemberReport,
  type OperationOptions,
  type ReadValue,
} from "./client.ts";
export { type Member, type MemberOptions, startMember } from "./member.ts";
