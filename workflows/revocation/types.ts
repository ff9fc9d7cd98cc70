/**
 * Emergency revocations: what an operator stops everywhere at once (a runtime, a target or target
 * pattern, an agent tool, a runtime version), for one workspace or all. Plain serialisable types,
 * shared by the registry workflow, runs, the worker's cache and the CLI.
 */
import type { Principal } from '../types';

/** What a revocation covers. */
export const RevocationKind = {
  /** Every action on a runtime (`value` is the runtime name). */
  Runtime: 'runtime',
  /** One target, or every target starting with a prefix when `value` ends in `*` (`runtime` narrows it). */
  Target: 'target',
  /** An agent tool enabled by the action (`runtime` narrows it). */
  Tool: 'tool',
  /** A runtime's version or build, as its adapter reports it (`runtime` is required). */
  RuntimeVersion: 'runtimeVersion',
} as const;
export type RevocationKind = (typeof RevocationKind)[keyof typeof RevocationKind];

export interface RevocationScope {
  /** One workspace, or `*` for all. */
  workspaceId: string;
  kind: RevocationKind;
  /** Narrows target and tool scopes to one runtime; required for runtimeVersion. */
  runtime?: string;
  value: string;
}

/** A revocation as the registry holds it: in force until lifted. */
export interface Revocation {
  /** `rev-<n>`, assigned by the registry in order. */
  id: string;
  scope: RevocationScope;
  reason: string;
  revokedBy: string;
  /** ISO-8601 registry time. */
  revokedAt: string;
  /** Ed25519 signature (hex) by `revokedBy`'s key, when the caller signed. */
  signature?: string;
  signedAt?: string;
  liftedBy?: string;
  liftedAt?: string;
  liftReason?: string;
  /** Ed25519 signature (hex) by `liftedBy`'s key, when the caller signed. */
  liftSignature?: string;
  liftSignedAt?: string;
}

/** Update `revoke`: add a revocation. */
export interface RevokeRequest {
  scope: RevocationScope;
  reason: string;
  revokedBy: Principal;
  /** The caller's own id for this request: a retried update with the same id returns the same revocation. */
  requestId?: string;
  signature?: string;
  signedAt?: string;
}

/** Update `lift`: end a revocation. Needs another operator than the one who revoked. */
export interface LiftRequest {
  revocationId: string;
  reason: string;
  liftedBy: Principal;
  signature?: string;
  signedAt?: string;
}

/** Query `revocations` result. */
export interface RevocationsView {
  schemaVersion: 1;
  /** Changes with every revoke and lift: caches compare it. */
  version: number;
  /** In force, oldest first. */
  active: Revocation[];
  /** Lifted, newest last (bounded). */
  lifted: Revocation[];
}

/** Input of `revocationRegistry`; `state` only from its own continue-as-new. */
export interface RevocationRegistryInput {
  schemaVersion: 1;
  state?: RegistryState;
  /** Continue as new past this many history events. @default 2000 */
  maxHistoryEvents?: number;
}

export interface RegistryState {
  nextId: number;
  version: number;
  active: Revocation[];
  lifted: Revocation[];
  /** requestId -> revocation id, for idempotent retries (bounded). */
  requests: [string, string][];
  /** Revocations whose fan-out to runs has not completed yet. */
  pendingFanOut: string[];
}

/** Signal `revoked` to a run: names a revocation only; the run confirms it with the registry. */
export interface RevokedNotice {
  revocationId: string;
}

/** What a run shows about a revocation that reached it (`status.revocation`). */
export interface RunRevocation {
  revocationId: string;
  scope: RevocationScope;
  reason: string;
  revokedBy: string;
  revokedAt: string;
  /** Where the run was when it took effect. */
  effect: 'ended-before-dispatch' | 'dispatch-cancelled' | 'dispatch-refused' | 'revoked-while-running';
}

/**
 * The registry's workflow id, unless the worker's configuration names another (tests). No workspace
 * prefix: its payloads are system-keyed.
 */
export const REVOCATION_REGISTRY_ID = 'portarium.revocations';
