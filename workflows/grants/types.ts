/**
 * Standing approvals: an eligible approver grants in advance, for one rule of one workspace, a
 * bounded number of approvals of actions in a scope, until an expiry. A run that matches counts a
 * grant as one approval of its grantor. Plain serialisable types, shared by the registry workflow,
 * runs, the activities and the CLI.
 */
import type { GrantScope } from '../../policies/grant-scope';
import type { Principal } from '../types';

export type { GrantScope };

/** A grant as the registry holds it. */
export interface Grant {
  /** `grant-<n>`, assigned by the registry in order. */
  id: string;
  workspaceId: string;
  /** The policy rule whose approvals it may give. */
  ruleId: string;
  grantor: { id: string; roles: string[] };
  scope: GrantScope;
  maxUses: number;
  uses: number;
  /** ISO-8601; registry time decides. */
  expiresAt: string;
  reason: string;
  grantedAt: string;
  /** The caller's id for the request, part of what is signed. */
  requestId?: string;
  /** Ed25519 signature (hex) by the grantor's key, required where the rule needs signed decisions. */
  signature?: string;
  signedAt?: string;
  revokedBy?: string;
  revokedAt?: string;
  revokeReason?: string;
}

/** Update `grant`: add a standing approval. */
export interface GrantRequest {
  ruleId: string;
  grantor: Principal;
  scope: GrantScope;
  maxUses: number;
  expiresAt: string;
  reason: string;
  /** A retried update with the same id returns the same grant. */
  requestId?: string;
  signature?: string;
  signedAt?: string;
}

/** Update `revokeGrant`: stop new uses at once. */
export interface RevokeGrantRequest {
  grantId: string;
  revokedBy: Principal;
  reason: string;
}

/** Update `useGrants`: a run takes one use of each grant, atomically; `release` is ignored (a use is never given back). */
export interface UseGrantsRequest {
  /** The run's workflow id and first execution: one use per grant per run, however often asked. */
  useKey: string;
  take?: string[];
  release?: string[];
}

export type GrantUseResult = { grantId: string; ok: true; grant: Grant } | { grantId: string; ok: false; type: string; message: string };

export interface UseGrantsResult {
  taken: GrantUseResult[];
  released: string[];
}

/** Query `grants`. */
export interface GrantsView {
  schemaVersion: 1;
  workspaceId: string;
  /** Usable now (not revoked, not expired, uses left), oldest first. */
  active: Grant[];
  /** Revoked, expired or used up, newest last (bounded). */
  ended: Grant[];
}

export interface GrantRegistryState {
  nextId: number;
  grants: Grant[];
  /** requestId -> grant id, for idempotent retries (bounded). */
  requests: [string, string][];
  /** `<grantId> <useKey>` of uses taken (bounded, newest last). */
  uses: string[];
  /** requestId and signedAt of signed grants added within the freshness window (replay guard). */
  signed?: [string, string][];
}

/** Input of `grantRegistry`; `state` only from its own continue-as-new. */
export interface GrantRegistryInput {
  schemaVersion: 1;
  workspaceId: string;
  state?: GrantRegistryState;
  maxHistoryEvents?: number;
}

/** What the registry learns from the worker's policy about one rule, to refuse a grant it could never count. */
export interface GrantRuleView {
  /** The rule exists in the workspace's policy and accepts grants. */
  terms?: import('../../policies/grant-scope').GrantTerms;
  signed: boolean;
  approverKeys: Record<string, string>;
  approverRoles: Record<string, string[]>;
}
