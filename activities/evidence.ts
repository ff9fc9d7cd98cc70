/**
 * The evidence activity: the workflow hands over the entries its sink does not hold yet, and gets back
 * what the sink now holds for the chain (count, head) and where it sits in the workspace's Merkle log
 * (leaf index, signed tree head). Idempotent, so Temporal may retry it freely. A batch bigger than
 * APPEND_LIMITS is appended in consecutive parts (each its own leaf), so no size of batch stalls a run.
 */
import { Context } from '@temporalio/activity';
import { canonicalJson } from '../workflows/hashing';
import type { EvidenceEntry } from '../workflows/evidence-chain';
import type { EvidenceReceipt } from '../workflows/types';
import { APPEND_LIMITS, type AppendReceipt, type EvidenceSink, chunked } from './evidence-sink';

export interface PersistEvidenceRequest {
  workspaceId: string;
  runId: string;
  /** The Temporal run id of the writing execution: its chain is kept apart from other executions'. */
  execution?: string;
  entries: EvidenceEntry[];
}

export function createEvidenceActivities(sink: EvidenceSink) {
  return {
    async persistEvidence(req: PersistEvidenceRequest): Promise<EvidenceReceipt> {
      const { workspaceId, runId, execution } = req;
      const parts = chunked(req.entries, APPEND_LIMITS.entries, APPEND_LIMITS.bytes, (e) => Buffer.byteLength(canonicalJson(e)));
      let r: AppendReceipt | undefined;
      let written = 0;
      // An empty batch still asks for the receipt (the head the sink holds).
      for (const entries of parts.length ? parts : [[]]) {
        r = await sink.append({ workspaceId, runId, ...(execution === undefined ? {} : { execution }), entries });
        written += r.written;
        if (parts.length > 1) Context.current().heartbeat();
      }
      if (!r) throw new Error('unreachable: no append');
      if (written) Context.current().log.debug('evidence persisted', { sink: sink.kind, runId, execution, written, count: r.count, treeSize: r.treeHead.treeSize });
      return {
        sink: sink.kind,
        ...(r.execution === undefined ? {} : { execution: r.execution }),
        count: r.count,
        head: r.head,
        leafIndex: r.leafIndex,
        treeSize: r.treeHead.treeSize,
        rootHash: r.treeHead.rootHash,
      };
    },
  };
}

export type EvidenceActivities = ReturnType<typeof createEvidenceActivities>;
