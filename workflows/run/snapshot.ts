/**
 * What a governed run carries across continue-as-new: its whole state as one plain object, and the
 * input shape of a continued execution (`{ continued: <snapshot> }`). A continued execution goes on
 * exactly where the last one stopped, with the policy decision, the frozen policy snapshot and every
 * deadline it had; nothing is loaded or evaluated again, so a policy edit never changes it.
 *
 * The continued shape is accepted only by an execution Temporal started by continue-as-new: a start
 * with a forged snapshot (claiming approvals) is refused as `InvalidRunInput`.
 */
import type { PolicyDecision } from '../../policies/evaluate';
import type { Duty, PolicySnapshot } from '../../policies/schema';
import type { ApprovalBookState } from './approvals';
import type { EvidenceEntry } from '../evidence-chain';
import type { RunOutboxState } from '../events/run-events';
import { governedRunInputSchema, jsonBytes } from '../schemas';
import type {
  CancelRequest,
  EvidenceReceipt,
  GovernedAction,
  GovernedRunInput,
  ManualCompletion,
  RefusalRecord,
  RunDeadlines,
  RunQuotaStatus,
  RunState,
  Tier,
} from '../types';
import { TIER_ORDER } from '../types';
import { z } from '../zod-sandbox';

/** States a run continues as new in: it waits for people or time, and no activity is in flight. */
export const CONTINUABLE_STATES: readonly RunState[] = ['AwaitingApproval', 'ChangesRequested', 'VetoWindow', 'AwaitingManualCompletion'];

/**
 * History length past which a waiting run continues as new, even if the server has not suggested it
 * yet: far under the server's hard limit (51,200 events), so a flood of messages cannot close a run.
 * @default 4000
 */
export const MAX_HISTORY_EVENTS = 4_000;
/** History size (bytes) past which a waiting run continues as new; the hard limit is 50 MB. */
export const MAX_HISTORY_BYTES = 16 * 1024 * 1024;
/**
 * Largest snapshot carried, as JSON: under Temporal's 2 MB payload limit with room for encryption.
 * A larger state (a very long run with much legitimate traffic) waits on in its execution instead.
 */
const MAX_SNAPSHOT_BYTES = 1_500_000;

/** A `QuotaLease` as plain data (status only: a run never continues while it holds or awaits a lease). */
export interface QuotaLeaseState extends RunQuotaStatus {
  grantedAt?: string;
}

/** The whole state of a waiting run. MAINTENANCE: `GovernedRunState.carry` and `.continued`. */
export interface RunSnapshot {
  schemaVersion: 1;
  /** The run's original input (workspace, requester, idempotency key, reason). */
  input: GovernedRunInput;
  /** The policy snapshot loaded when the run started: amendments are judged by it, quotas taken from it. */
  policySnapshot: PolicySnapshot;
  /** The first execution's run id (v2 signatures); absent for runs that verify v1 signatures. */
  firstExecutionRunId?: string;
  /** How many executions came before this one in the chain. */
  continuations: number;
  state: RunState;
  tier?: Tier;
  action: GovernedAction;
  actionHash: string;
  policy: PolicyDecision;
  approvals: ApprovalBookState;
  duties: [string, Duty[]][];
  evidence: {
    entries: EvidenceEntry[];
    /** What the sink acknowledged, for the execution that wrote it. */
    stored?: EvidenceReceipt;
  };
  refusals: RefusalRecord[];
  refusalsTotal: number;
  refusalEntries: number;
  repeatedApprovals?: number;
  unrecordedRefusals: [string, number][];
  lastError?: { type: string; message: string };
  deadlines: RunDeadlines;
  roundStartedAt: string;
  escalationStepsDone: number;
  escalationRoles: string[];
  released: boolean;
  changesRequestedBy?: string;
  cancel?: CancelRequest;
  manual?: ManualCompletion;
  outbox: RunOutboxState;
  quota?: QuotaLeaseState;
}

/** Input of a continued execution. */
export interface ContinuedRunInput {
  continued: RunSnapshot;
}

export const isContinuedInput = (raw: unknown): raw is { continued: unknown } =>
  typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.hasOwn(raw, 'continued');

/**
 * Checks the snapshot's shape: the fields the run reads are typed, the input is checked as strictly
 * as a start's, and the evidence chain is verified by the caller (hashes and links from genesis).
 * Only a continued execution reads it, and only this workflow writes it.
 */
export function continuedInputSchema(): z.ZodType<ContinuedRunInput> {
  const obj = z.looseObject({});
  const iso = z.string().max(64);
  const str = z.string().max(4096);
  const snapshot = z.strictObject({
    schemaVersion: z.literal(1),
    input: governedRunInputSchema(),
    policySnapshot: z.looseObject({ policyHash: z.string(), workspaceId: z.string(), rules: z.array(obj) }),
    firstExecutionRunId: z.string().min(1).max(128).optional(),
    continuations: z.number().int().min(0),
    state: z.enum(CONTINUABLE_STATES as [RunState, ...RunState[]]),
    tier: z.enum(TIER_ORDER).optional(),
    action: z.looseObject({ runtime: z.string(), target: z.string(), operation: z.string(), input: z.record(z.string(), z.unknown()) }),
    actionHash: z.string().regex(/^[0-9a-f]{64}$/),
    policy: z.looseObject({ effect: z.literal('Allow'), quorum: z.number(), eligibleRoles: z.array(z.string()), escalation: z.array(obj) }),
    approvals: z.strictObject({
      approvals: z.array(z.strictObject({ decisionId: str, approverId: str, approverRoles: z.array(str), at: iso, countsFrom: iso, grantId: str.optional() })),
      seen: z.array(z.tuple([str, z.strictObject({ fingerprint: str, verdict: obj })])),
    }),
    duties: z.array(z.tuple([str, z.array(z.string())])),
    evidence: z.strictObject({ entries: z.array(obj), stored: obj.optional() }),
    refusals: z.array(obj).max(100),
    refusalsTotal: z.number().int().min(0),
    refusalEntries: z.number().int().min(0),
    repeatedApprovals: z.number().int().min(0).optional(),
    unrecordedRefusals: z.array(z.tuple([str, z.number().int().min(0)])).max(60),
    lastError: z.strictObject({ type: str, message: z.string() }).optional(),
    deadlines: z.strictObject({ vetoEndsAt: iso.optional(), escalatesAt: iso.optional(), expiresAt: iso.optional(), quotaFreesAt: iso.optional() }),
    roundStartedAt: iso,
    escalationStepsDone: z.number().int().min(0),
    escalationRoles: z.array(z.string()),
    released: z.boolean(),
    changesRequestedBy: str.optional(),
    cancel: obj.optional(),
    manual: obj.optional(),
    outbox: z.strictObject({ publishing: z.boolean(), off: z.boolean(), queued: z.array(obj), published: z.number(), delivered: z.number(), undelivered: z.array(obj) }),
    quota: obj.optional(),
  });
  return z.strictObject({ continued: snapshot }) as unknown as z.ZodType<ContinuedRunInput>;
}

/** Whether `snapshot` is small enough to hand to continue-as-new. */
export const snapshotFits = (snapshot: RunSnapshot): boolean => jsonBytes({ continued: snapshot }) <= MAX_SNAPSHOT_BYTES;
