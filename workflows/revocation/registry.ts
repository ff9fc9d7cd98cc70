/**
 * `revocationRegistry`: the namespace's emergency revocations (one workflow, id
 * `portarium.revocations`: no workspace prefix, so its payloads are system-keyed). Operators add and
 * lift revocations by update (`portarium revoke`); workers read them by query into a cache that the
 * dispatch activity checks; each new revocation is fanned out to the runs in flight by an activity
 * that signals them `revoked`. Durable: the revocations live in this workflow's history, so they
 * survive worker and server restarts; the workflow continues as new when its history grows.
 */
import { allHandlersFinished, condition, continueAsNew, isCancellation, log, metricMeter, proxyActivities, setHandler, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { RevocationActivities } from '../../activities/revocation/fan-out';
import type { RevocationSigningActivities } from '../../activities/revocation/signing';
import { type SignedRevocation, revocationSignatureRefusal } from './signing';
import { FailureType, refusal } from '../failures';
import { parsedOrRefuse as parsed } from '../schemas';
import { RevocationBook, emptyRegistry } from './book';
import { liftUpdate, registryPingSignal, revocationsQuery, revokeUpdate } from './messages';
import { liftRequestSchema, revokeRequestSchema } from './schemas';
import type { RevocationRegistryInput } from './types';

const MAX_HISTORY_EVENTS = 2_000;

// No attempt limit: a revocation reaches every run in flight, however long the server takes to answer.
const { fanOutRevocation } = proxyActivities<RevocationActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  summary: 'signal runs in scope',
});

const { revocationSigning } = proxyActivities<RevocationSigningActivities>({
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 3 },
  summary: 'signature requirement',
});

const now = () => new Date();

/** Refuse (typed) a request whose workspace requires signed decisions and whose signature does not hold. */
async function checkSigned(workspaceId: string, fields: SignedRevocation | undefined, signature: string | undefined): Promise<void> {
  const why = revocationSignatureRefusal(await revocationSigning({ workspaceId }), fields, signature);
  if (why) throw refusal(FailureType.SignatureInvalid, why);
}

export async function revocationRegistry(input: RevocationRegistryInput = { schemaVersion: 1 }): Promise<void> {
  // A state is carried only by the registry's own continue-as-new: a hand-started registry with a
  // forged state (revocations already lifted) starts empty instead.
  const carried = workflowInfo().continuedFromExecutionRunId !== undefined ? input?.state : undefined;
  const book = new RevocationBook(carried ?? emptyRegistry());
  const inForce = metricMeter.createGauge('portarium_revocations_in_force', 'int', 'revocations', 'Emergency revocations in force');
  inForce.set(book.state.active.length);
  // What workers read (describe, no worker needed): revocations in force, in the memo. A query would
  // need a worker polling the registry's queue, and a worker that cannot read fails closed.
  const publish = () => {
    const { schemaVersion, version, active } = book.view();
    upsertMemo({ revocations: { schemaVersion, version, active } });
  };
  publish();

  setHandler(
    revokeUpdate,
    async (raw) => {
      const req = parsed(revokeRequestSchema(), raw);
      const registryId = workflowInfo().workflowId;
      const fields: SignedRevocation | undefined = req.requestId && req.signedAt
        ? { kind: 'revoke', registryId, requestId: req.requestId, scope: req.scope, reason: req.reason, signerId: req.revokedBy.id, signedAt: req.signedAt }
        : undefined;
      await checkSigned(req.scope.workspaceId, fields, req.signature);
      const v = book.revoke(req, now());
      if (!v.ok) throw refusal(v.type, v.message);
      log.warn('revocation added', { id: v.revocation.id, scope: v.revocation.scope, by: v.revocation.revokedBy });
      inForce.set(book.state.active.length);
      publish();
      return v.revocation;
    },
    { validator: (raw) => void parsed(revokeRequestSchema(), raw) },
  );
  setHandler(
    liftUpdate,
    async (raw) => {
      const req = parsed(liftRequestSchema(), raw);
      const target = book.find(req.revocationId);
      if (target) {
        const fields: SignedRevocation | undefined = req.signedAt
          ? { kind: 'lift', registryId: workflowInfo().workflowId, revocationId: req.revocationId, reason: req.reason, signerId: req.liftedBy.id, signedAt: req.signedAt }
          : undefined;
        await checkSigned(target.scope.workspaceId, fields, req.signature);
      }
      const v = book.lift(req, now());
      if (!v.ok) throw refusal(v.type, v.message);
      log.warn('revocation lifted', { id: v.revocation.id, by: v.revocation.liftedBy });
      inForce.set(book.state.active.length);
      publish();
      return v.revocation;
    },
    { validator: (raw) => void parsed(liftRequestSchema(), raw) },
  );
  setHandler(revocationsQuery, () => book.view());
  setHandler(registryPingSignal, () => undefined);

  // Fan-outs run side by side: a burst of revocations reaches runs at once, not one after another.
  const inFlight = new Set<string>();
  const fanOut = async (id: string) => {
    const revocation = book.find(id);
    try {
      // Retried without limit until every run in scope was told.
      if (revocation && revocation.liftedAt === undefined) await fanOutRevocation({ revocation });
    } catch (err) {
      // Only a refusal lands here; the dispatch-time check still covers every run.
      if (isCancellation(err)) throw err;
      log.error('revocation fan-out refused', { id, error: err instanceof Error ? err.message : String(err) });
    }
    inFlight.delete(id);
    book.fannedOut(id);
  };
  const idle = () => inFlight.size === 0 && book.pendingFanOut.length === 0;
  for (;;) {
    await condition(() => book.pendingFanOut.some((id) => !inFlight.has(id)) || (continueDue(input) && idle()));
    for (const id of book.pendingFanOut) {
      if (inFlight.has(id)) continue;
      inFlight.add(id);
      void fanOut(id);
    }
    if (continueDue(input) && idle()) {
      await condition(allHandlersFinished);
      if (!idle()) continue;
      return continueAsNew<typeof revocationRegistry>({ schemaVersion: 1, state: book.state, ...(input?.maxHistoryEvents && { maxHistoryEvents: input.maxHistoryEvents }) });
    }
  }
}

function continueDue(input: RevocationRegistryInput | undefined): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > (input?.maxHistoryEvents ?? MAX_HISTORY_EVENTS);
}

