/**
 * `workspaceQuota`: the coordinator of one workspace's quota for one runtime (id
 * `<workspace>/quota/<runtime>`, on the task queue of the run that started it). Runs ask with
 * `quotaRequest` (signalWithStart, by the `requestQuotaLease` activity); the coordinator grants in
 * request order by signalling `quotaGranted` back, within both limits, and tells runs that must wait
 * why (`quotaQueued`). Runs release with `quotaRelease`. A run that closed without releasing
 * (terminated) is found by a periodic liveness signal, which fails for a closed run, and its lease
 * is reclaimed. Both sides are workflows, so a worker crash loses no lease and counts none twice.
 * The rules live in `./quota-book`; this file wires messages and awaits.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { FailureType } from './failures';
import * as msg from './messages';
import { QuotaBook, type QuotaEntry } from './quota-book';
import { parseQuota, quotaReleaseSchema, quotaRequestSchema, workspaceQuotaInputSchema } from './quota-schemas';
import type { QuotaQueuedNotice, WorkspaceQuotaInput, WorkspaceQuotaStatus } from './types';
import { workspaceOfWorkflowId } from './workflow-ids';

/** A coordinator with nothing to do for this long finishes; the next request starts it again. */
const IDLE_FINISH_MS = 10 * 60_000;
/** History length after which the coordinator continues as new, even if the server does not suggest it yet. */
const MAX_HISTORY_EVENTS = 2_000;

const now = () => new Date();

export async function workspaceQuota(raw: WorkspaceQuotaInput): Promise<void> {
  const parsed = parseQuota(workspaceQuotaInputSchema(), raw);
  // A bad input is a bug in the activity or a hand-started workflow: nothing to coordinate.
  if (!parsed.ok) return void log.error('workspaceQuota: invalid input', { reason: parsed.reason });
  const input = parsed.value;
  // A coordinator started by hand under another workspace's id would refuse every run of its own.
  const owner = workspaceOfWorkflowId(workflowInfo().workflowId);
  if (owner !== input.workspaceId) {
    throw ApplicationFailure.create({ type: FailureType.WorkspaceMismatch, message: `quota coordinator ${workflowInfo().workflowId} belongs to workspace ${owner ?? '(none)'}, not ${input.workspaceId}`, nonRetryable: true });
  }
  const book = new QuotaBook(input.state ?? { limits: {}, waiting: [], leases: [], window: [], released: [], idleSince: now().toISOString() });
  /** Held leases whose run asked again (a retried activity): the grant is sent again, harmlessly. */
  const regrant: QuotaEntry[] = [];
  let dirty = false;
  let checkNow = false;

  setHandler(msg.quotaRequestSignal, (r) => {
    const req = parseQuota(quotaRequestSchema(), r);
    if (!req.ok) return void log.warn('quotaRequest refused', { reason: req.reason });
    const { leaseId, runId, runExecutionId, limits } = req.value;
    // Only runs of this workspace take its capacity (and bring its limits).
    if (workspaceOfWorkflowId(runId) !== input.workspaceId) return void log.warn('quotaRequest refused: run of another workspace', { runId });
    const outcome = book.request({ leaseId, runId, runExecutionId, requestedAt: now().toISOString() }, limits);
    if (outcome === 'held') regrant.push(book.state.leases.find((l) => l.leaseId === leaseId)!);
    dirty = true;
  });
  setHandler(msg.quotaReleaseSignal, (r) => {
    const rel = parseQuota(quotaReleaseSchema(), r);
    if (!rel.ok) return void log.warn('quotaRelease refused', { reason: rel.reason });
    book.release(rel.value.leaseId, now());
    dirty = true;
  });
  setHandler(msg.quotaReconcileSignal, () => {
    checkNow = dirty = true;
  });
  setHandler(msg.quotaStatusQuery, () => status(input, book));

  let nextCheck = Date.now() + book.leaseCheckMs;
  for (;;) {
    // Cleared before acting, so a message that arrives while signals are in flight wakes the next wait.
    dirty = false;
    await pump(book, regrant.splice(0));
    if (checkNow || Date.now() >= nextCheck) {
      checkNow = false;
      nextCheck = Date.now() + book.leaseCheckMs;
      await checkLiveness(book);
      continue;
    }
    const idleUntil = book.idleUntil(now(), IDLE_FINISH_MS);
    if (idleUntil !== undefined && Date.now() >= idleUntil) {
      if (!allHandlersFinished()) await condition(allHandlersFinished);
      if (book.empty) return;
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > (input.maxHistoryEvents ?? MAX_HISTORY_EVENTS)) {
      if (!allHandlersFinished()) await condition(allHandlersFinished);
      await pump(book, regrant.splice(0));
      return continueAsNew<typeof workspaceQuota>({ ...input, state: book.state });
    }
    const wakeAt = Math.min(book.nextWindowChange(now()) ?? Infinity, idleUntil ?? nextCheck);
    await condition(() => dirty, Math.max(1, wakeAt - Date.now() + 1));
  }
}

/** Grant what both limits allow, tell new waiters why they wait; runs that cannot be signalled are gone. */
async function pump(book: QuotaBook, regrant: QuotaEntry[]): Promise<void> {
  const at = now();
  const fresh = book.grant(at);
  const granted = [...fresh, ...regrant];
  const queued = book.takeUnnotified(at);
  const sends = [
    ...granted.map((e) => ({ e, grant: true, send: () => handleOf(e).signal(msg.quotaGrantedSignal, { leaseId: e.leaseId, grantedAt: e.grantedAt! }) })),
    ...queued.map(({ entry: e, position, blocker }) => {
      const notice: QuotaQueuedNotice = { leaseId: e.leaseId, position, ...blocker };
      return { e, grant: false, send: () => handleOf(e).signal(msg.quotaQueuedSignal, notice) };
    }),
  ];
  const gone = await unreachable(sends);
  // Only a first grant that never arrived is taken back out of the per-minute window; a re-sent one
  // was delivered before (the run asked again), so its dispatch may have happened and still counts.
  for (const s of gone) book.reclaim(s.e.leaseId, now(), s.grant && fresh.includes(s.e));
  // A reclaimed grant frees capacity for the next waiter at once.
  if (gone.length) await pump(book, []);
}

/** Signal every holder and waiter; one that cannot be signalled has closed, and its lease or place is freed. */
async function checkLiveness(book: QuotaBook): Promise<void> {
  const entries = [...book.state.leases, ...book.state.waiting];
  const gone = await unreachable(entries.map((e) => ({ e, send: () => handleOf(e).signal(msg.quotaProbeSignal) })));
  for (const { e } of gone) {
    log.warn('quota lease reclaimed: its run closed without releasing', { leaseId: e.leaseId, runId: e.runId });
    book.reclaim(e.leaseId, now(), false);
  }
}

const handleOf = (e: QuotaEntry) => getExternalWorkflowHandle(e.runId, e.runExecutionId);

/** Send all at once; return those whose target could not be signalled (a closed or unknown run). */
async function unreachable<T extends { send: () => Promise<void> }>(sends: T[]): Promise<T[]> {
  const results = await Promise.allSettled(sends.map((s) => s.send()));
  const gone: T[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') return;
    if (isCancellation(r.reason)) throw r.reason;
    gone.push(sends[i]);
  });
  return gone;
}

function status(input: WorkspaceQuotaInput, book: QuotaBook): WorkspaceQuotaStatus {
  const s = book.state;
  const blockedBy = book.blocker(now());
  return {
    workspaceId: input.workspaceId,
    runtime: input.runtime,
    limits: { ...s.limits },
    leases: s.leases.map(({ leaseId, runId, grantedAt }) => ({ leaseId, runId, grantedAt })),
    waiting: s.waiting.map(({ leaseId, runId, requestedAt }) => ({ leaseId, runId, requestedAt })),
    grantsInWindow: book.counted(now()).length,
    ...(blockedBy && { blockedBy }),
  };
}
