/**
 * The registry's state and rules, as one object: add, lift, what is in force. Pure: the registry
 * workflow passes time in and turns verdicts into typed failures.
 */
import type { LiftRequest, RegistryState, Revocation, RevokeRequest, RevocationsView } from './types';
import { FailureType } from '../failures';

/** Revocations in force at once; a full registry refuses more (lift some first). */
export const MAX_ACTIVE = 500;
/** Lifted revocations kept for `list --all` and audit; older ones remain in the registry's history. */
export const MAX_LIFTED = 200;
/** Request ids remembered for idempotent retries. */
const MAX_REQUESTS = 1000;

export type BookVerdict = { ok: true; revocation: Revocation } | { ok: false; type: FailureType; message: string };

export const emptyRegistry = (): RegistryState => ({ nextId: 1, version: 0, active: [], lifted: [], requests: [], pendingFanOut: [] });

export class RevocationBook {
  constructor(private readonly s: RegistryState) {}

  get state(): RegistryState {
    return this.s;
  }

  get pendingFanOut(): readonly string[] {
    return this.s.pendingFanOut;
  }

  view(): RevocationsView {
    return { schemaVersion: 1, version: this.s.version, active: this.s.active.map((r) => ({ ...r })), lifted: this.s.lifted.map((r) => ({ ...r })) };
  }

  find(id: string): Revocation | undefined {
    return this.s.active.find((r) => r.id === id) ?? this.s.lifted.find((r) => r.id === id);
  }

  revoke(req: RevokeRequest, now: Date): BookVerdict {
    const known = req.requestId ? this.s.requests.find(([k]) => k === req.requestId)?.[1] : undefined;
    const earlier = known ? this.find(known) : undefined;
    if (earlier) return { ok: true, revocation: earlier };
    if (this.s.active.length >= MAX_ACTIVE) {
      return { ok: false, type: FailureType.RevocationRefused, message: `the registry holds ${MAX_ACTIVE} revocations in force; lift some first` };
    }
    const revocation: Revocation = {
      id: `rev-${this.s.nextId++}`,
      scope: { ...req.scope },
      reason: req.reason,
      revokedBy: req.revokedBy.id,
      revokedAt: now.toISOString(),
      ...(req.signature && { signature: req.signature, signedAt: req.signedAt }),
    };
    this.s.active.push(revocation);
    this.s.pendingFanOut.push(revocation.id);
    if (req.requestId) {
      this.s.requests.push([req.requestId, revocation.id]);
      if (this.s.requests.length > MAX_REQUESTS) this.s.requests.shift();
    }
    this.s.version++;
    return { ok: true, revocation };
  }

  lift(req: LiftRequest, now: Date): BookVerdict {
    const i = this.s.active.findIndex((r) => r.id === req.revocationId);
    if (i < 0) {
      const lifted = this.s.lifted.find((r) => r.id === req.revocationId);
      // The same lift again (a retried update) answers as the first did.
      if (lifted && lifted.liftedBy === req.liftedBy.id && lifted.liftReason === req.reason) return { ok: true, revocation: lifted };
      return { ok: false, type: FailureType.RevocationRefused, message: lifted ? `${req.revocationId} was lifted by ${lifted.liftedBy} at ${lifted.liftedAt}` : `no revocation ${req.revocationId}` };
    }
    const r = this.s.active[i];
    if (r.revokedBy === req.liftedBy.id) {
      return { ok: false, type: FailureType.IncompatibleDuties, message: `${req.liftedBy.id} revoked ${r.id}; another operator must lift it` };
    }
    const lifted: Revocation = {
      ...r, liftedBy: req.liftedBy.id, liftedAt: now.toISOString(), liftReason: req.reason,
      ...(req.signature && { liftSignature: req.signature, liftSignedAt: req.signedAt }),
    };
    this.s.active.splice(i, 1);
    this.s.lifted.push(lifted);
    if (this.s.lifted.length > MAX_LIFTED) this.s.lifted.shift();
    this.s.version++;
    return { ok: true, revocation: lifted };
  }

  fannedOut(id: string): void {
    this.s.pendingFanOut = this.s.pendingFanOut.filter((p) => p !== id);
  }
}
