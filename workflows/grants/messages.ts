/**
 * The public message API of `grantRegistry` (one per workspace, id `<workspace>/grants`).
 * MAINTENANCE: keep docs/operators.md "Standing approvals" in sync.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Grant, GrantRequest, GrantsView, RevokeGrantRequest, UseGrantsRequest, UseGrantsResult } from './types';

/** Add a grant; returns it with its id. Refusals are typed failures (`GrantRefused`, `SignatureInvalid`). */
export const grantUpdate = defineUpdate<Grant, [GrantRequest]>('grant');
/** Revoke a grant: no new use from then on. */
export const revokeGrantUpdate = defineUpdate<Grant, [RevokeGrantRequest]>('revokeGrant');
/** Take (and give back) uses: called by runs through an activity, one update at a time, so the last use goes once. */
export const useGrantsUpdate = defineUpdate<UseGrantsResult, [UseGrantsRequest]>('useGrants');
export const grantsQuery = defineQuery<GrantsView>('grants');
/** Wakes the registry: used by signal-with-start callers that only want it running. */
export const grantsPingSignal = defineSignal<[]>('grantsPing');
