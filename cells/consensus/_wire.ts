// Conversions between the package's TypeScript shapes (camelCase, `null` for "no value") and
// the wire's proteins (snake_case, absent fields for "no value"), used by members and clients.
import type { Infer } from "@cell/sdk";
import type { MemberStatus, WriteResult } from "./service.ts";
import type { KvResult, NodeStatus, Role } from "./types.ts";

/** A command's result as the wire's `WriteResult`. */
export function toWireWrite(result: KvResult): Infer<typeof WriteResult> {
  return {
    ok: result.ok,
    index: result.index,
    ...(result.previous === null ? {} : { previous: result.previous }),
  };
}

/** A wire `WriteResult` as a {@linkcode KvResult}. */
export function fromWireWrite(w: Infer<typeof WriteResult>): KvResult {
  return { ok: w.ok, previous: w.previous ?? null, index: w.index };
}

/** A node status as the wire's `MemberStatus`. */
export function toWireStatus(status: NodeStatus): Infer<typeof MemberStatus> {
  return {
    id: status.id,
    role: status.role,
    term: status.term,
    ...(status.leader === null ? {} : { leader: status.leader }),
    commit_index: status.commitIndex,
    applied_index: status.appliedIndex,
    last_index: status.lastIndex,
    members: status.members,
    lag: status.lag,
  };
}

/** A wire `MemberStatus` as a {@linkcode NodeStatus}. */
export function fromWireStatus(s: Infer<typeof MemberStatus>): NodeStatus {
  return {
    id: s.id,
    role: s.role as Role,
    term: s.term,
    leader: s.leader ?? null,
    commitIndex: s.commit_index,
    appliedIndex: s.applied_index,
    lastIndex: s.last_index,
    members: s.members,
    lag: s.lag,
  };
}
