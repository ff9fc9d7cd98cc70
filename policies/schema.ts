/**
 * The policy language: the shape of policy files in `policies/sets/` (defaults plus one file per
 * workspace) and of the frozen snapshot a run is given. Files are checked with these zod schemas when
 * the worker starts and by `portarium policy check`; an error names the file and the path inside it.
 * Only types from here reach the workflow bundle (`import type`).
 */
import { z } from 'zod';
import { type BreakGlassPolicy, BreakGlass } from './break-glass';
import { Connections, Egress } from './connections';
import { GrantsAccepted } from './grants';
import { DURATION_PATTERN, durationMs } from './duration';
import { Isolation } from './isolation';
import { type QuotaLimits, Quotas } from './quotas';
import { Subscribers } from './subscribers';
import { Trigger } from './triggers';
import { TIER_ORDER, WORKSPACE_ID_PATTERN } from './vocabulary';

/** Longest duration a policy may set: deadlines beyond it are configuration mistakes. */
const MAX_DURATION_MS = 366 * 86_400_000;
const duration = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 90s, 15m, 4h or 7d')
  .refine((d) => !DURATION_PATTERN.test(d) || durationMs(d) <= MAX_DURATION_MS, 'at most 366d');
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/, 'expected an identifier');
/** Exact text, or a prefix ending in `*`; a list matches any of its items. */
const pattern = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Duties a person can hold in one run. */
export const Duty = z.enum(['requester', 'approver', 'reviewer', 'manualExecutor', 'amender']);
export type Duty = z.infer<typeof Duty>;

export const ToolClass = z.enum(['ReadOnly', 'Mutating', 'Dangerous']);
export type ToolClass = z.infer<typeof ToolClass>;

export const PolicyTier = z.enum([...TIER_ORDER, 'Deny']);
export type PolicyTier = z.infer<typeof PolicyTier>;

const Escalation = z.strictObject({
  /** Time after the request (or the last amendment) when this step applies. */
  after: duration,
  /** Roles that become eligible to approve from then on. */
  addRoles: z.array(name).min(1),
});

const ApprovalRequirement = z.strictObject({
  /** Distinct approvers needed. */
  quorum: z.number().int().min(1).max(20).optional(),
  /** Roles whose holders may approve (any of them). */
  eligibleRoles: z.array(name).min(1).optional(),
  /** People who may approve whatever their roles. */
  eligibleUsers: z.array(name).optional(),
  /** Specialist approval: for each role, at least one counted approver holds it. */
  requiredRoles: z.array(name).optional(),
  /** Approvals given sooner than this after the request (or the last amendment) count only from then. */
  coolingOff: duration.optional(),
  /** Approvals older than this when the action would be dispatched are void and must be renewed. */
  freshness: duration.optional(),
  /** Decisions must carry an Ed25519 signature by the approver's key in `approverKeys`. */
  signed: z.boolean().optional(),
  /** Time after the request when an undecided run expires. */
  expiresAfter: duration.optional(),
  escalation: z.array(Escalation).max(10).optional(),
  /** Standing approvals this rule accepts, and who may grant them; absent: none (see policies/grants.ts). */
  grants: GrantsAccepted.optional(),
});
export type ApprovalRequirement = z.infer<typeof ApprovalRequirement>;

export const Rule = z.strictObject({
  id: name,
  description: z.string().max(1000).optional(),
  match: z.strictObject({
    runtime: pattern.optional(),
    target: pattern.optional(),
    operation: pattern.optional(),
    /** The requester holds at least one of these roles. */
    requesterRoles: z.array(name).min(1).optional(),
    /** At least one of the agent tools the run enables matches. */
    tools: pattern.optional(),
  }),
  /** Condition over `action.*` (input fields included), `requester.*` and `workspace`; see policies/condition.ts. */
  when: z.string().min(1).max(2000).optional(),
  tier: PolicyTier,
  approval: ApprovalRequirement.optional(),
  /** Assisted: how long reviewers may veto before dispatch. */
  vetoWindow: duration.optional(),
});
export type Rule = z.infer<typeof Rule>;

export const Defaults = z.strictObject({
  approval: z.strictObject({
    quorum: z.number().int().min(1).max(20),
    eligibleRoles: z.array(name).min(1),
    expiresAfter: duration,
    escalation: z.array(Escalation).max(10),
  }),
  vetoWindow: duration,
  /** ManualOnly: time to wait for manual completion. */
  manualExpiresAfter: duration,
  /** Holders may cancel any run of the workspace; the requester may always cancel their own. */
  operatorRoles: z.array(name),
  /** Pairs of duties one person may not both hold in a run (requester+approver always are). */
  incompatibleDuties: z.array(z.tuple([Duty, Duty])).optional(),
  /** Blast-radius class per agent tool name, overriding the name-based default. */
  toolClasses: z.record(z.string(), ToolClass).optional(),
  /** Per Langflow flow (the action target): the only tools a run of it may enable. */
  flowTools: z.record(z.string(), z.array(z.string())).optional(),
  /** Ed25519 public keys (64 hex digits) of approvers, for rules that require signed decisions. */
  approverKeys: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits')).optional(),
  /** Roles of key holders. Where a rule requires signatures, these roles count, not the ones a message claims. */
  approverRoles: z.record(z.string(), z.array(name)).optional(),
});
export type Defaults = z.infer<typeof Defaults>;

export const DefaultsFile = z.strictObject({
  schemaVersion: z.literal(1),
  kind: z.literal('defaults'),
  defaults: Defaults,
  /** Rules that apply to every workspace, before its own. */
  rules: z.array(Rule).default([]),
});
export type DefaultsFile = z.infer<typeof DefaultsFile>;

export const WorkspaceFile = z.strictObject({
  schemaVersion: z.literal(1),
  kind: z.literal('workspace'),
  workspace: z.string().regex(WORKSPACE_ID_PATTERN, 'expected a workspace id'),
  /** Overrides of the defaults for this workspace. */
  defaults: Defaults.partial().optional(),
  rules: z.array(Rule),
  /** Connections to external runtimes (not part of the decision snapshot); see policies/connections.ts. */
  connections: Connections.optional(),
  /** Egress allow-list per runtime; default deny. */
  egress: Egress.optional(),
  /** Receivers of the runs' lifecycle CloudEvents (not part of the decision snapshot); see policies/subscribers.ts. */
  subscribers: Subscribers.optional(),
  /** CloudEvent routes that start runs in this workspace (not part of the decision snapshot); see policies/triggers.ts. */
  triggers: z.array(Trigger).max(500).optional(),
  /** Dispatch quotas per runtime (`*`: the default); see policies/quotas.ts. In the snapshot, outside its hash. */
  quotas: Quotas.optional(),
  /** Which worker pool (task queue) runs this workspace (not part of the decision snapshot); see policies/isolation.ts. */
  isolation: Isolation.optional(),
  /** Break-glass roles, review and rate limits; absent: no break-glass (see policies/break-glass.ts). In the snapshot and its hash. */
  breakGlass: BreakGlass.optional(),
});
export type WorkspaceFile = z.infer<typeof WorkspaceFile>;

/** What a run is given: everything that decides it, frozen, with the hash the evidence names. */
export interface PolicySnapshot {
  policyHash: string;
  workspaceId: string;
  /** `false` when no file exists for the workspace: every action is then denied. */
  workspaceKnown: boolean;
  defaults: Defaults;
  rules: Rule[];
  /**
   * The workspace had event subscribers when the snapshot was taken, so the run publishes its
   * lifecycle events. Outside `policyHash`: who hears about a run does not decide it.
   */
  publishesEvents?: boolean;
  /**
   * Dispatch quotas per runtime (`*`: the default for others), durations in ms. Outside `policyHash`:
   * a quota changes when an allowed action runs, never whether it may, and operators tune limits
   * without every run's decision hash changing. The run still records the limits it asked with.
   */
  quotas?: Readonly<Record<string, QuotaLimits>>;
  /** Break-glass of the workspace (durations in ms), inside `policyHash`; absent: none. */
  breakGlass?: BreakGlassPolicy;
}
