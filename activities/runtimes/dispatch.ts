/**
 * The single dispatch activity: routes a governed action to its runtime adapter with the workspace's
 * connection, egress allow-list and credentials, passes heartbeats and cancellation through, and checks
 * what comes back before it enters workflow history: secret values scrubbed, secret-looking fields
 * redacted, large outputs moved to the payload store by reference.
 */
import { ownValue } from '../../policies/own';
import * as otel from '@opentelemetry/api';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import type { LoadedPolicies } from '../policy/load';
import { FailureType, refusal, runtimeRejected, runtimeUnavailable } from '../../workflows/failures';
import { buildEntry, redact, redactText } from '../../workflows/evidence-chain';
import { type SucceededDispatch, succeededEvidence } from '../../workflows/run/outcome';
import { canonicalJson } from '../../workflows/hashing';
import { nestingDepth } from '../../workflows/schemas';
import type { DispatchRequest, DispatchResult, EvidenceReceipt, JsonValue, OutcomeEvidenceRequest } from '../../workflows/types';
import { createGuardedHttp } from '../http/client';
import type { PayloadRef, PayloadStore } from '../payload-store';
import type { RuntimeAdapter } from './port';
import { type AdapterRequest, type LegacyDispatchRequest, adapterRequestOf, dispatchIdOf, fallbackSpanIdOf } from './dispatch-key';
import { type PersistEvidenceRequest, appendEvidence } from '../evidence/activity';
import type { EvidenceSink } from '../evidence/sink';
import type { EvidenceEntry } from '../../workflows/evidence-chain';
import { SecretScrubber, maskCredentialText, redactCredentialFields } from '../secrets/scrubber';
import { runTraceparent } from '../events/trace-context';
import type { SecretStore } from '../secrets/port';
import { clipUtf8, utf8Bytes } from '../utf8';
import type { RevocableAction } from '../../workflows/revocation/match';
import type { Revocation } from '../../workflows/revocation/types';

/** Largest runtime output kept in history, in UTF-8 bytes of JSON; larger outputs go to the payload store. */
const MAX_OUTPUT_BYTES = 256 * 1024;
/**
 * Largest runtime output kept at all, in UTF-8 bytes of JSON. The HTTP client already caps a response
 * at 8 MiB; this bounds what any adapter can hand over (JSON escaping can grow a body). Larger is
 * refused as `RuntimeRejected`, saying that the action ran.
 */
const MAX_STORED_OUTPUT_BYTES = 32 * 1024 * 1024;
/** Largest failure message an attempt reports, in UTF-8 bytes; failures travel in history. */
const MAX_FAILURE_MESSAGE_BYTES = 2 * 1024;
/** Largest failure details, as JSON bytes; each string in them is clipped to a quarter of it first. */
const MAX_FAILURE_DETAILS_BYTES = 8 * 1024;

export interface DispatchDeps {
  runtimes: RuntimeAdapter[];
  policies: LoadedPolicies;
  secrets: SecretStore;
  payloads: PayloadStore;
  evidence: EvidenceSink;
  /** Revocations in force (the worker's cache); checked before anything is stored or sent. Absent: none checked (unit setups). */
  revocations?: RevocationCheck;
}

/** What the dispatch activity asks of the revocation cache (activities/revocation/cache.ts). */
export interface RevocationCheck {
  covering(action: RevocableAction): Promise<Revocation | undefined>;
}

/** Refuse an action a revocation in force covers: non-retryable, naming the revocation. */
async function refuseIfRevoked(check: RevocationCheck | undefined, req: AdapterRequest): Promise<void> {
  const r = await check?.covering({ workspaceId: req.workspaceId, runtime: req.runtime, target: req.target, tools: req.tools });
  if (!r) return;
  throw ApplicationFailure.create({
    type: FailureType.Revoked,
    message: `revoked by ${r.id} (${r.scope.kind} ${r.scope.value}, by ${r.revokedBy}): nothing sent to ${req.runtime}`,
    nonRetryable: true,
    details: [{ revocationId: r.id, revocation: r }],
  });
}

const outcomeSchema = z.object({
  output: z.unknown().refine((v) => v !== undefined, 'runtime returned no output'),
  externalRef: z.string().max(512).optional(),
});

/** Runtime text is clipped to this before scrubbing, so a 50 MB error costs no more than a short one. */
const SCRUB_WINDOW_BYTES = 64 * 1024;

/** Failure text as history may hold it: clipped, secrets masked, credential-looking text redacted, clipped in bytes. */
function cleanText(t: string, scrub: SecretScrubber): string {
  return clipUtf8(redactText(maskCredentialText(scrub.text(clipUtf8(t, SCRUB_WINDOW_BYTES)))), MAX_FAILURE_MESSAGE_BYTES);
}

/** Details bounded by depth, count and bytes; what does not fit is replaced by a note of its size. */
function boundDetails(value: unknown, scrub: SecretScrubber, depth = 0): JsonValue {
  if (typeof value === 'string') return clipUtf8(maskCredentialText(scrub.text(clipUtf8(value, SCRUB_WINDOW_BYTES))), MAX_FAILURE_DETAILS_BYTES / 4);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value !== 'object' || depth >= 8) return '[omitted]';
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => (v === undefined ? null : boundDetails(v, scrub, depth + 1)));
  const out: { [k: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(value).slice(0, 50)) if (v !== undefined) out[clipUtf8(scrub.text(k), 256)] = boundDetails(v, scrub, depth + 1);
  return out;
}

/**
 * The adapter's failure as history may hold it: secret values and credential-looking text masked, the
 * message and details bounded in bytes (a runtime's error body can be megabytes).
 */
function scrubbed(err: unknown, scrub: SecretScrubber): ApplicationFailure {
  if (err instanceof ApplicationFailure) {
    let details = err.details ? err.details.map((d) => boundDetails(d, scrub)) : undefined;
    const size = details ? utf8Bytes(JSON.stringify(details)) : 0;
    if (size > MAX_FAILURE_DETAILS_BYTES) details = [{ omitted: `details of ${size} bytes` }];
    // Evidence* types from dispatch mean "stored nothing, sent nothing": an adapter never claims them.
    const type = err.type?.startsWith('Evidence') ? 'RuntimeError' : err.type ?? undefined;
    return ApplicationFailure.create({ type, message: cleanText(err.message, scrub), nonRetryable: err.nonRetryable ?? false, details });
  }
  return runtimeUnavailable(cleanText(err instanceof Error ? err.message : String(err), scrub));
}

/** Deepest output kept: masking walks it recursively, and a runtime can answer JSON nested thousands deep. */
const MAX_OUTPUT_DEPTH = 256;

/** Refuse an output that is not JSON, too large or too deep to keep (the action has run either way). */
function checkOutput(runtime: string, output: unknown): void {
  if (nestingDepth(output, MAX_OUTPUT_DEPTH) > MAX_OUTPUT_DEPTH) throw runtimeRejected(`${runtime} ran the action but returned an output nested more than ${MAX_OUTPUT_DEPTH} levels deep; the output was not kept`);
  let text: string;
  try {
    text = JSON.stringify(output);
  } catch {
    throw runtimeRejected(`${runtime} ran the action but returned an output that is not JSON; it was not kept`);
  }
  const bytes = utf8Bytes(text);
  if (bytes > MAX_STORED_OUTPUT_BYTES) throw runtimeRejected(`${runtime} ran the action but returned ${bytes} bytes of output, more than the ${MAX_STORED_OUTPUT_BYTES}-byte limit; the output was not kept`);
}

/**
 * Headers every outbound call carries, so the runtime's logs can be joined to the run. `traceparent`
 * continues the active span (the RunActivity span, so the runtime joins the run's trace); with no
 * active span it falls back to one deterministic trace id per run and a span id per dispatch.
 */
function correlationHeaders(req: DispatchRequest, dispatchId: string, active: otel.Span | undefined = otel.trace.getActiveSpan()): Record<string, string> {
  return {
    'x-portarium-workspace': req.workspaceId,
    'x-portarium-correlation-id': encodeURIComponent(req.correlationId),
    'x-portarium-dispatch-id': dispatchId,
    traceparent: runTraceparent(req.workflowId, fallbackSpanIdOf(req.dispatchKey), active),
  };
}

/** Span attributes of a dispatch: identifiers only, never input, output or credentials. */
function dispatchAttributes(req: DispatchRequest): otel.Attributes {
  return {
    'portarium.workspace': req.workspaceId,
    'portarium.correlation_id': req.correlationId,
    'portarium.run_id': req.workflowId,
    'portarium.tier': req.tier ?? 'None',
    'portarium.runtime': req.runtime,
    'portarium.decision': 'Allow',
  };
}

const evidenceRef = (kind: string, ref: PayloadRef) => ({ kind, uri: ref.uri, sha256: ref.sha256, contentType: ref.contentType });

/**
 * The pre-dispatch evidence write. Any sink failure is non-retryable here: the workflow, not this
 * activity's bounded retries, waits for a sink that is down (and re-judges approvals afterwards).
 */
async function storeBeforeDispatch(sink: EvidenceSink, req: PersistEvidenceRequest, ctx: Context): Promise<EvidenceReceipt> {
  try {
    return await appendEvidence(sink, req, ctx.info.workflowExecution?.runId, () => ctx.heartbeat());
  } catch (err) {
    const type = err instanceof ApplicationFailure && err.type?.startsWith('Evidence') ? err.type : FailureType.EvidenceUnavailable;
    const message = `evidence not stored, nothing sent to the runtime: ${redactText(err instanceof Error ? err.message : String(err)).slice(0, 512)}`;
    throw ApplicationFailure.create({ type, message, nonRetryable: true });
  }
}

/** Append the run's outcome entry to its chain of `execution` (idempotent: a held entry is skipped). */
function appendOne(sink: EvidenceSink, req: AdapterRequest, execution: string | undefined, entry: EvidenceEntry, ctx: Context, beat: () => void): Promise<EvidenceReceipt> {
  return appendEvidence(sink, { workspaceId: req.workspaceId, runId: req.workflowId, ...(execution === undefined ? {} : { execution }), entries: [entry] }, ctx.info.workflowExecution?.runId, beat);
}

/**
 * Build the run's `StateSucceeded` entry right after `ask.after` and store it. Never throws: the action
 * has run, and failing now would send it again. Unconfirmed, the entry still goes back and the run
 * stores it with its own retries (idempotently). An earlier attempt that stored its own outcome entry
 * and died before reporting leaves that entry in the sink: it is the one kept.
 */
async function storeOutcome(sink: EvidenceSink, req: AdapterRequest, ask: OutcomeEvidenceRequest, done: SucceededDispatch, ctx: Context, beat: () => void): Promise<DispatchResult['outcome']> {
  const { after, execution } = ask;
  const write = (entry: EvidenceEntry) => appendOne(sink, req, execution, entry, ctx, beat);
  const warn = (what: string, err: unknown) => ctx.log.warn(what, { workspaceId: req.workspaceId, runId: req.workflowId, error: redactText(err instanceof Error ? err.message : String(err)) });
  try {
    // Never earlier than the entry it follows: chains are checked for time going backwards.
    const at = new Date(Math.max(Date.now(), Date.parse(after.occurredAt)));
    const scope = { workspaceId: req.workspaceId, correlationId: req.correlationId, runId: req.workflowId };
    const entry = buildEntry(scope, { seq: after.seq + 1, previousHash: after.hash }, succeededEvidence(done), at, true);
    try {
      return { entry, stored: await write(entry) };
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === FailureType.EvidenceConflict)) {
        warn('outcome evidence not confirmed; the run stores it', err);
        return { entry };
      }
    }
    const held = (await readRunPatiently(sink, req, execution, beat))[after.seq + 1];
    if (held?.previousHash !== after.hash || held.event !== 'StateSucceeded') return undefined;
    return { entry: held, stored: await write(held).catch(() => undefined) };
  } catch (err) {
    warn('outcome evidence not built; the run records it', err);
    return undefined;
  }
}

/**
 * Run `fn`, heartbeating every 2 s meanwhile: a slow sink after the runtime answered must not time the
 * attempt out (heartbeat timeout 10 s), or the retry sends the action again.
 */
async function whileBeating<T>(beat: () => void, fn: (beat: () => void) => Promise<T>): Promise<T> {
  const timer = setInterval(beat, 2_000);
  try {
    return await fn(beat);
  } finally {
    clearInterval(timer);
  }
}

/** The pre-dispatch receipt counts exactly the head the run gave plus the outcome entry returned. */
function coversOutcome(receipt: EvidenceReceipt, ask: OutcomeEvidenceRequest | undefined, stored: DispatchResult['outcome']): boolean {
  return !!ask && !!stored && receipt.count === ask.after.seq + 2 && receipt.head === stored.entry.hash;
}

/**
 * The chain an earlier attempt stored its outcome in, read again on a failed read (a few times, a
 * second or so in all): without it the run records an outcome of its own, which the sink refuses.
 */
async function readRunPatiently(sink: EvidenceSink, req: AdapterRequest, execution: string | undefined, beat: () => void): Promise<EvidenceEntry[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await sink.readRun(req.workspaceId, req.workflowId, execution);
    } catch (err) {
      if (attempt >= 3) throw err;
      beat();
      await new Promise((r) => setTimeout(r, 100 * 3 ** attempt));
    }
  }
}

/**
 * A retried attempt whose predecessor stored the outcome entry (the runtime answered) and died before
 * it could report: the answer is taken from the sink and the payload store, and the runtime is not
 * called again (nor judged again: an action that ran cannot be revoked or refused after the fact).
 * Undefined, and the attempt goes on as usual, when there is no such entry or it cannot be read back.
 */
async function recoverOutcome(deps: DispatchDeps, req: AdapterRequest, ask: OutcomeEvidenceRequest, ctx: Context): Promise<DispatchResult | undefined> {
  const { after, execution } = ask;
  const held = (await deps.evidence.readRun(req.workspaceId, req.workflowId, execution))[after.seq + 1];
  if (held?.previousHash !== after.hash || held.event !== 'StateSucceeded' || held.seq !== after.seq + 1) return undefined;
  const ref = held.payloadRefs?.find((r) => r.kind === 'RuntimeOutput');
  // A small output the payload store could not take reached only history: not recoverable here.
  if (!ref) return undefined;
  const text = (await deps.payloads.get({ ...ref, bytes: 0 })).toString('utf8');
  const bytes = utf8Bytes(text);
  const output = bytes <= MAX_OUTPUT_BYTES ? (JSON.parse(text) as JsonValue) : { payloadRef: { uri: ref.uri, sha256: ref.sha256, contentType: ref.contentType, bytes } };
  const stored = await appendOne(deps.evidence, req, execution, held, ctx, () => ctx.heartbeat(ctx.info.heartbeatDetails));
  const externalRef = typeof held.data?.externalRef === 'string' ? held.data.externalRef : undefined;
  ctx.log.info('dispatch answered from the outcome an earlier attempt stored; the runtime was not called again', { workspaceId: req.workspaceId, runId: req.workflowId, attempt: ctx.info.attempt });
  return { runtime: req.runtime, output, ...(externalRef === undefined ? {} : { externalRef }), payloadRefs: held.payloadRefs, outcome: { entry: held, stored } };
}

export function createDispatchActivities(deps: DispatchDeps) {
  const byName = new Map(deps.runtimes.map((r) => [r.name, r]));
  return {
    /**
     * Execute one approved action on its runtime. Retries reuse `dispatchKey`. With `evidence`, the
     * run's entries are stored first, in the same attempt (idempotently: a retry finds them held); a
     * sink that does not take them fails the attempt with an Evidence* type before anything is sent,
     * and the workflow waits for the sink itself.
     *
     * With `outcome`, the `StateSucceeded` entry is built and stored here too, once the runtime has
     * answered (`storeOutcome`): the run then ends without another activity.
     *
     * `request` may be a legacy one (the dispatch key named `idempotencyKey`): activity tasks recorded
     * by older workers are still retried here. It is normalised before anything else.
     */
    async dispatchAction(request: DispatchRequest | LegacyDispatchRequest, evidence?: Omit<PersistEvidenceRequest, 'workspaceId' | 'runId'> | null, outcome?: OutcomeEvidenceRequest): Promise<DispatchResult> {
      const ctx = Context.current();
      const req: AdapterRequest = adapterRequestOf(request);
      const dispatchId = dispatchIdOf(req.dispatchKey);
      let receipt: EvidenceReceipt | undefined;
      if (outcome && ctx.info.attempt > 1) {
        const recovered = await recoverOutcome(deps, req, outcome, ctx).catch((err) => {
          ctx.log.warn('outcome of an earlier attempt not read back; dispatching as usual', { workspaceId: req.workspaceId, error: redactText(err instanceof Error ? err.message : String(err)) });
          return undefined;
        });
        if (recovered) return recovered;
      }
      // Before the evidence write and the call: a revoked action leaves nothing behind but the refusal.
      await refuseIfRevoked(deps.revocations, req);
      if (evidence) receipt = await storeBeforeDispatch(deps.evidence, { ...evidence, workspaceId: req.workspaceId, runId: req.workflowId }, ctx);
      const adapter = byName.get(req.runtime);
      if (!adapter) {
        throw refusal(FailureType.UnknownRuntime, `no runtime named ${req.runtime} is registered on this worker (have: ${[...byName.keys()].join(', ')})`);
      }
      otel.trace.getActiveSpan()?.setAttributes(dispatchAttributes(req));
      const scrub = new SecretScrubber();
      // What was asked for (credential-like fields masked) is stored by content before anything is
      // sent: evidence refers to it by hash.
      const inputRef = await deps.payloads.put(req.workspaceId, canonicalJson(redact(req.input)), 'application/json');
      const ws = deps.policies.connectionsFor(req.workspaceId);
      let raw: unknown;
      // The adapter's last heartbeat details (a remote run id it resumes from on a retry): beats sent
      // while the outcome is stored repeat them, so a retried attempt still resumes instead of resending.
      let lastBeat: unknown = ctx.info.heartbeatDetails;
      // The denominator of the runtime error rate (portarium_runtime_errors counts the failed ones).
      ctx.metricMeter.createCounter('portarium_dispatch_attempts', 'attempts', 'Dispatch attempts by runtime').add(1, { runtime: req.runtime });
      try {
        raw = await adapter.execute({
          request: req,
          dispatchId,
          attempt: ctx.info.attempt,
          signal: ctx.cancellationSignal,
          heartbeat: (d) => {
            lastBeat = d;
            ctx.heartbeat(d);
          },
          previous: ctx.info.heartbeatDetails,
          connections: ws.connections,
          http: createGuardedHttp({ workspaceId: req.workspaceId, runtime: req.runtime, rule: ownValue(ws.egress, req.runtime), headers: correlationHeaders(req, dispatchId) }),
          secrets: async () => scrub.remember(await deps.secrets.read(req.workspaceId, req.runtime)),
          registerSecret: (value) => scrub.add(value),
        });
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure(`dispatch to ${req.runtime} cancelled`);
        const failure = scrubbed(err, scrub);
        ctx.metricMeter
          .createCounter('portarium_runtime_errors', 'errors', 'Failed dispatch attempts by runtime and failure type')
          .add(1, { runtime: req.runtime, failure_type: failure.type ?? 'Unknown' });
        ctx.log.warn('dispatch failed', { runtime: req.runtime, workspaceId: req.workspaceId, attempt: ctx.info.attempt, type: failure.type, message: failure.message });
        throw failure;
      }
      const parsed = outcomeSchema.safeParse(raw);
      if (!parsed.success) throw runtimeRejected(`${req.runtime} returned a malformed result: ${parsed.error.issues[0]?.message}`);
      checkOutput(req.runtime, parsed.data.output);
      // Secret values, then credential-named fields, never reach workflow history (token counts do).
      const output = redactCredentialFields(scrub.json(parsed.data.output as JsonValue));
      const text = JSON.stringify(output);
      const small = utf8Bytes(text) <= MAX_OUTPUT_BYTES;
      let outputRef: PayloadRef | undefined;
      try {
        outputRef = await deps.payloads.put(req.workspaceId, text, 'application/json');
      } catch (err) {
        // The action has run: failing now would send it again. A small output still reaches history.
        if (!small) throw err;
        ctx.log.warn('runtime output not stored in the payload store', { workspaceId: req.workspaceId, error: (err as Error).message });
      }
      const payloadRefs = [evidenceRef('ActionInput', inputRef), ...(outputRef ? [evidenceRef('RuntimeOutput', outputRef)] : [])];
      const { externalRef } = parsed.data;
      const stored = outcome ? await whileBeating(() => ctx.heartbeat(lastBeat), (beat) => storeOutcome(deps.evidence, req, outcome, { runtime: req.runtime, externalRef, payloadRefs }, ctx, beat)) : undefined;
      return {
        runtime: req.runtime,
        output: small ? output : { payloadRef: { ...outputRef! } },
        externalRef,
        payloadRefs,
        // A retried attempt whose predecessor stored the outcome finds it held before the runtime is
        // called: that receipt is past the head the run gave, so the outcome's receipt reports it.
        ...(receipt && !coversOutcome(receipt, outcome, stored) && { evidence: receipt }),
        ...(stored && { outcome: stored }),
      };
    },
  };
}

export type DispatchActivities = ReturnType<typeof createDispatchActivities>;
