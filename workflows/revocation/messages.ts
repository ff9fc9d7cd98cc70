/**
 * The public message API of `revocationRegistry` (one per namespace, id `portarium.revocations`).
 * MAINTENANCE: keep docs/operators.md "Emergency revocation" in sync.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { LiftRequest, Revocation, RevokeRequest, RevocationsView } from './types';

/** Add a revocation; returns it with its id. Refusals are typed failures (`RevocationRefused`). */
export const revokeUpdate = defineUpdate<Revocation, [RevokeRequest]>('revoke');
/** Lift a revocation: by another operator than the one who revoked (`IncompatibleDuties` otherwise). */
export const liftUpdate = defineUpdate<Revocation, [LiftRequest]>('lift');
/** Revocations in force, and the latest lifted ones. */
export const revocationsQuery = defineQuery<RevocationsView>('revocations');
/** Wakes the registry: used by update-with-start callers that only want it running. */
export const registryPingSignal = defineSignal<[]>('revocationsPing');
