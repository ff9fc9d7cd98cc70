/**
 * The evidence activity: the workflow hands over the entries its sink does not hold yet, and gets back
 * what the sink now holds for the chain (count, head) and where it sits in the workspace's Merkle log
 * (leaf index, signed tree head). Idempotent, so Temporal may retry it freely. A batch bigger than
 * APPEND_LIMITS is appended in consecutive parts (each its own leaf), so no size of batch stalls a run.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../workflows/failures';
import { canonicalJson } from '../../workflows/hashing';
import type { EvidenceEntry } from '../../workflows/evidence-chain';
import type { EvidenceReceipt } from '../../workflows/types';
import { APPEND_LIMITS, type AppendReceipt, type EvidenceSink, chunked } from './sink';

export interface PersistEvidenceRequest {
  workspaceId: string;
  runId: string;
  /**
   * The execution whose chain the workflow continues (its own, or after a reset the one it replayed
   * receipts of). Only the execution that schedules the activity may write its chain.
   */
  execution?: string;
  entries: EvidenceEntry[];
}

/**
 * Append `req.entries` to the sink for the execution `scheduler` (the one that scheduled the activity)
 * and return what the sink now holds. Shared by `persistEvidence` and by the dispatch activity, which
 * stores a run's pre-dispatch entries this way before it calls the runtime.
 */
export async function appendEvidence(sink: EvidenceSink, req: PersistEvidenceRequest, scheduler: string | undefined, heartbeat: () => void): Promise<EvidenceReceipt> {
  const { workspaceId, runId, execution } = req;
  // A chain is written only by its own execution: the one that scheduled this activity.
  if (execution !== undefined && execution !== scheduler) {
    throw ApplicationFailure.create({
      type: FailureType.EvidenceExecutionMoved,
      message: `execution ${scheduler} asked to continue the evidence chain of execution ${String(execution).slice(0, 64)}; it writes its own`,
      nonRetryable: true,
    });
  }
  const parts = chunked(req.entries, APPEND_LIMITS.entries, APPEND_LIMITS.bytes, (e) => Buffer.byteLength(canonicalJson(e)));
  let r: AppendReceipt | undefined;
  let written = 0;
  // An empty batch still asks for the receipt (the head the sink holds).
  // Appends by sink kind and outcome: a sink that keeps failing holds every run before dispatch.
  const appends = Context.current().metricMeter.createCounter('portarium_evidence_appends', 'appends', 'Evidence sink appends by sink kind and outcome');
  for (const entries of parts.length ? parts : [[]]) {
    try {
      r = await sink.append({ workspaceId, runId, ...(execution === undefined ? {} : { execution }), entries });
    } catch (err) {
      appends.add(1, { sink: sink.kind, outcome: 'failed' });
      throw err;
    }
    appends.add(1, { sink: sink.kind, outcome: 'ok' });
    written += r.written;
    if (parts.length > 1) heartbeat();
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
}

export function createEvidenceActivities(sink: EvidenceSink) {
  return {
    async persistEvidence(req: PersistEvidenceRequest): Promise<EvidenceReceipt> {
      const ctx = Context.current();
      return appendEvidence(sink, req, ctx.info.workflowExecution?.runId, () => ctx.heartbeat());
    },
  };
}

export type EvidenceActivities = ReturnType<typeof createEvidenceActivities>;
