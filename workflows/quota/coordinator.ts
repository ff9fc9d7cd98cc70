/**
 * `workspaceQuota`: the coordinator of one workspace's quota for one runtime (id
 * `<workspace>/quota/<runtime>`, on the task queue of the run that started it). Runs ask with
 * `quotaRequest` (signalWithStart, by the `requestQuotaLease` activity) carrying their lease secret;
 * the coordinator grants in request order by signalling `quotaGranted` back, within both limits, which
 * it loads from the workspace policy itself (`loadQuotaLimits`), and tells runs that must wait why
 * (`quotaQueued`); each message carries a proof keyed by the lease's secret. Runs release with
 * `quotaRelease`, which must carry the secret. A run that closed without releasing
 * (terminated) is found by a periodic liveness signal, which fails for a closed run, and its lease
 * is reclaimed. Both sides are workflows, so a worker crash loses no lease and counts none twice.
 * The rules live in `./quota-book`; this file wires messages and awaits.
 */
import {
  WorkflowError,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { QuotaActivities } from '../../activities/quota';
import { FailureType, refusal } from '../failures';
import * as msg from '../run/messages';
import { MAX_LEASES, MAX_REASON_CHARS, QuotaBook, type QuotaEntry } from './book';
import { QUOTA_AUTH_PATCH, quotaProof } from './proof';
import { parseQuota, quotaLimitsSchema, quotaReleaseSchema, quotaRequestSchema, workspaceQuotaInputSchema } from './schemas';
import type { QuotaQueuedNotice, WorkspaceQuotaInput, WorkspaceQuotaStatus } from '../types';
import { workspaceOfWorkflowId } from '../ids';

/** A coordinator with nothing to do for this long finishes; the next request starts it again. */
const IDLE_FINISH_MS = 10 * 60_000;
/** History length after which the coordinator continues as new, even if the server does not suggest it yet. */
const MAX_HISTORY_EVENTS = 2_000;
/**
 * A coordinator recorded before the protocol was authenticated continues as new at its first live
 * step, so from then on it loads its own limits and checks secrets.
 */
const QUOTA_AUTH_UPGRADE_PATCH = 'portarium-quota-auth-upgrade-v1';
/** Leases and waiters shown by `status` (the counts cover all). */
const MAX_SHOWN = 100;

const { loadQuotaLimits } = proxyActivities<QuotaActivities>({
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: [FailureType.InvalidMessage] },
});

const now = () => new Date();

export async function workspaceQuota(raw: WorkspaceQuotaInput): Promise<void> {
  const parsed = parseQuota(workspaceQuotaInputSchema(), raw);
  // A bad input is a bug in the activity or a hand-started workflow: nothing to coordinate.
  if (!parsed.ok) return void log.error('workspaceQuota: invalid input', { reason: parsed.reason });
  const input = parsed.value;
  // A coordinator started by hand under another workspace's id would refuse every run of its own.
  const owner = workspaceOfWorkflowId(workflowInfo().workflowId);
  if (owner !== input.workspaceId) {
    throw refusal(FailureType.WorkspaceMismatch, `quota coordinator ${workflowInfo().workflowId} belongs to workspace ${owner ?? '(none)'}, not ${input.workspaceId}`);
  }
  // A state is carried only by this coordinator's own continue-as-new. Anyone may start the workflow
  // by hand, and a forged state (grant times in the future, leases) would hold the workspace back.
  const carried = workflowInfo().continuedFromExecutionRunId !== undefined ? input.state : undefined;
  if (input.state && !carried) log.warn('workspaceQuota: a state given to a fresh start is ignored', { coordinator: workflowInfo().workflowId });
  const book = new QuotaBook(carried ?? { limits: {}, waiting: [], leases: [], window: [], released: [], idleSince: now().toISOString() });
  // Version 1 (replay only): limits came from requests. Since: from the coordinator's own policy load.
  const authenticated = patched(QUOTA_AUTH_PATCH);
  /** Held leases whose run asked again (a retried activity): the grant is sent again, harmlessly. */
  const regrant = new Set<string>();
  let dirty = false;
  let checkNow = false;
  // Loaded before the first grant of every execution, then again on each request and lease check.
  let limitsStale = authenticated;

  /** Every handler is total: a message that does not parse, or fails in any way, is counted and changes nothing. */
  const total = (signal: string, handle: () => void) => {
    try {
      handle();
    } catch (err) {
      if (err instanceof WorkflowError) throw err;
      refuse(signal, 'error', `could not be applied: ${err instanceof Error ? err.name : 'error'}`);
    }
  };
  const refuse = (signal: string, reason: string, detail: string) => {
    const count = book.noteRefusal(`${signal}:${reason}`, detail, now());
    // Logged at the 1st, 2nd, 4th, 8th... of a kind: a flood does not flood the log.
    if ((count & (count - 1)) === 0) log.warn(`${signal} refused`, { coordinator: workflowInfo().workflowId, reason, count, detail: detail.slice(0, MAX_REASON_CHARS) });
  };

  setHandler(msg.quotaRequestSignal, (r) =>
    total('quotaRequest', () => {
      const req = parseQuota(quotaRequestSchema(), r);
      if (!req.ok) return refuse('quotaRequest', 'invalid', req.reason);
      const { leaseId, runId, runExecutionId } = req.value;
      // Only runs of this workspace take its capacity (a run id is `<workspace>:<key>`).
      if (workspaceOfWorkflowId(runId) !== input.workspaceId || !runId.startsWith(`${input.workspaceId}:`)) {
        return refuse('quotaRequest', 'foreignRun', `${runId.slice(0, 200)} is not a run of workspace ${input.workspaceId}`);
      }
      const secret = req.value.schemaVersion === 2 ? req.value.secret : undefined;
      // Limits in a (version 1) request are ignored: only a version 1 coordinator took them.
      const limits = !authenticated && req.value.schemaVersion === 1 ? req.value.limits : undefined;
      const outcome = book.request({ leaseId, runId, runExecutionId, secret, requestedAt: now().toISOString() }, limits);
      if (outcome === 'secretMismatch') return refuse('quotaRequest', 'secretMismatch', `lease ${leaseId.slice(0, 200)} was asked for with another secret`);
      if (outcome === 'full') return refuse('quotaRequest', 'queueFull', 'the queue is full; the run asks again later');
      if (outcome === 'held' && regrant.size < MAX_LEASES) regrant.add(leaseId);
      if (authenticated) limitsStale = true;
      dirty = true;
    }),
  );
  setHandler(msg.quotaReleaseSignal, (r) =>
    total('quotaRelease', () => {
      const rel = parseQuota(quotaReleaseSchema(), r);
      if (!rel.ok) return refuse('quotaRelease', 'invalid', rel.reason);
      const outcome = book.release(rel.value.leaseId, rel.value.secret, now());
      if (outcome === 'wrongSecret') {
        return refuse('quotaRelease', 'wrongSecret', `lease ${rel.value.leaseId.slice(0, 200)}: ${rel.value.secret === undefined ? 'no secret' : 'wrong secret'}`);
      }
      dirty = true;
    }),
  );
  setHandler(msg.quotaReconcileSignal, () =>
    total('quotaReconcile', () => {
      checkNow = dirty = true;
    }),
  );
  setHandler(msg.quotaStatusQuery, () => status(input, book));

  const regrants = () => {
    const held = [...regrant].map((id) => book.state.leases.find((l) => l.leaseId === id)).filter((e): e is QuotaEntry => !!e);
    regrant.clear();
    return held;
  };
  // Before the first policy load of an authenticated book nothing is granted (fail closed).
  const mayGrant = () => !authenticated || book.state.limitsLoadedAt !== undefined;

  let lastCheck = Date.now();
  let nextCheck = lastCheck + book.leaseCheckMs;
  for (;;) {
    if (!authenticated && patched(QUOTA_AUTH_UPGRADE_PATCH)) {
      if (!allHandlersFinished()) await condition(allHandlersFinished);
      await pump(book, regrants(), true);
      return continueAsNew<typeof workspaceQuota>({ ...input, state: book.state });
    }
    // Cleared before acting, so a message that arrives while signals are in flight wakes the next wait.
    dirty = false;
    if (limitsStale) {
      limitsStale = false;
      await refreshLimits(book, input);
      // The policy's lease check interval applies from the last check on.
      nextCheck = lastCheck + book.leaseCheckMs;
    }
    await pump(book, regrants(), mayGrant());
    if (checkNow || Date.now() >= nextCheck) {
      checkNow = false;
      if (authenticated) limitsStale = true;
      lastCheck = Date.now();
      nextCheck = lastCheck + book.leaseCheckMs;
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
      await pump(book, regrants(), mayGrant());
      return continueAsNew<typeof workspaceQuota>({ ...input, state: book.state });
    }
    const wakeAt = Math.min(book.nextWindowChange(now()) ?? Infinity, idleUntil ?? nextCheck);
    await condition(() => dirty || limitsStale, Math.max(1, wakeAt - Date.now() + 1));
  }
}

/**
 * The limits in force, from the workspace policy as this worker loaded it: never from a request, so
 * a run's (old) snapshot cannot restore limits a policy change tightened. A failed load keeps the
 * limits in force and says why in `status`.
 */
async function refreshLimits(book: QuotaBook, input: WorkspaceQuotaInput): Promise<void> {
  try {
    const { limits } = await loadQuotaLimits({ workspaceId: input.workspaceId, runtime: input.runtime });
    const checked = Object.keys(limits).length === 0 ? { ok: true as const, value: {} } : parseQuota(quotaLimitsSchema(), limits);
    if (!checked.ok) throw new Error(`the policy's limits are invalid: ${checked.reason}`);
    book.setLimits(checked.value, now());
  } catch (err) {
    if (isCancellation(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    book.state.policyError = reason.slice(0, MAX_REASON_CHARS);
    log.warn('quota limits not loaded; the previous limits stay in force', { reason: book.state.policyError });
  }
}

/** The message to `e`, with the proof keyed by its secret (a version 1 entry has none and gets none). */
function proven<T extends object>(e: QuotaEntry, kind: 'quotaGranted' | 'quotaQueued' | 'quotaProbe', body: T): T & { proof?: string } {
  return e.secret === undefined ? body : { ...body, proof: quotaProof(e.secret, kind, body) };
}

/** Grant what both limits allow, tell new waiters why they wait; runs that cannot be signalled are gone. */
async function pump(book: QuotaBook, regrant: QuotaEntry[], mayGrant: boolean): Promise<void> {
  if (!mayGrant) return;
  const at = now();
  const fresh = book.grant(at);
  const granted = [...fresh, ...regrant];
  const queued = book.takeUnnotified(at);
  const sends = [
    ...granted.map((e) => ({ e, grant: true, send: () => handleOf(e).signal(msg.quotaGrantedSignal, proven(e, 'quotaGranted', { leaseId: e.leaseId, grantedAt: e.grantedAt! })) })),
    ...queued.map(({ entry: e, position, blocker }) => {
      const notice: QuotaQueuedNotice = proven(e, 'quotaQueued', { leaseId: e.leaseId, position, ...blocker });
      return { e, grant: false, send: () => handleOf(e).signal(msg.quotaQueuedSignal, notice) };
    }),
  ];
  const gone = await unreachable(sends);
  // Only a first grant that never arrived is taken back out of the per-minute window; a re-sent one
  // was delivered before (the run asked again), so its dispatch may have happened and still counts.
  for (const s of gone) book.reclaim(s.e.leaseId, now(), s.grant && fresh.includes(s.e));
  // A reclaimed grant frees capacity for the next waiter at once.
  if (gone.length) await pump(book, [], mayGrant);
}

/** Signal every holder and waiter; one that cannot be signalled has closed, and its lease or place is freed. */
async function checkLiveness(book: QuotaBook): Promise<void> {
  const entries = [...book.state.leases, ...book.state.waiting];
  const gone = await unreachable(entries.map((e) => ({ e, send: () => handleOf(e).signal(msg.quotaProbeSignal, proven(e, 'quotaProbe', { leaseId: e.leaseId })) })));
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

/** What `status` shows: never a secret; lists cut to `MAX_SHOWN`. */
function status(input: WorkspaceQuotaInput, book: QuotaBook): WorkspaceQuotaStatus {
  const s = book.state;
  const blockedBy = book.blocker(now());
  return {
    workspaceId: input.workspaceId,
    runtime: input.runtime,
    limits: { ...s.limits },
    ...(s.limitsLoadedAt && { limitsLoadedAt: s.limitsLoadedAt }),
    ...(s.policyError && { policyError: s.policyError }),
    leases: s.leases.slice(0, MAX_SHOWN).map(({ leaseId, runId, grantedAt }) => ({ leaseId, runId, grantedAt })),
    waiting: s.waiting.slice(0, MAX_SHOWN).map(({ leaseId, runId, requestedAt }) => ({ leaseId, runId, requestedAt })),
    leaseCount: s.leases.length,
    waitingCount: s.waiting.length,
    grantsInWindow: book.counted(now()).length,
    ...(blockedBy && { blockedBy }),
    refusals: Object.fromEntries(Object.entries(s.refusals ?? {}).map(([k, v]) => [k, { ...v }])),
  };
}
