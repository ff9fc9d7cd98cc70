/**
 * The evidence activity: the workflow hands over the entries its sink does not hold yet, and gets back
 * what the sink now holds for the run (count, head) and where the run sits in the workspace's Merkle
 * log (leaf index, signed tree head). Idempotent, so Temporal may retry it freely.
 */
import { Context } from '@temporalio/activity';
import type { EvidenceEntry } from '../workflows/evidence-chain';
import type { EvidenceReceipt } from '../workflows/types';
import type { EvidenceSink } from './evidence-sink';

export interface PersistEvidenceRequest {
  workspaceId: string;
  runId: string;
  entries: EvidenceEntry[];
}

export function createEvidenceActivities(sink: EvidenceSink) {
  return {
    async persistEvidence(req: PersistEvidenceRequest): Promise<EvidenceReceipt> {
      const r = await sink.append(req);
      if (r.written) Context.current().log.debug('evidence persisted', { sink: sink.kind, runId: r.runId, written: r.written, count: r.count, treeSize: r.treeHead.treeSize });
      return { sink: sink.kind, count: r.count, head: r.head, leafIndex: r.leafIndex, treeSize: r.treeHead.treeSize, rootHash: r.treeHead.rootHash };
    },
  };
}

export type EvidenceActivities = ReturnType<typeof createEvidenceActivities>;
