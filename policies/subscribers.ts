/**
 * Who hears about a workspace's runs: subscribers that receive each lifecycle transition as a
 * CloudEvent (`com.portarium.run.<event>.v1`), such as Activepieces webhook triggers. Part of the
 * workspace policy file, not of the decision snapshot: delivery reads the worker's current copy, so
 * removing a subscriber stops deliveries to it at once. Their URLs pass the egress guard under the
 * pseudo-runtime `events` (`egress.events.hosts`). No secrets here: a bearer token comes from the
 * secret store (runtime `events`). MAINTENANCE: keep docs/events.md in sync.
 */
import { z } from 'zod';
import { DURATION_PATTERN, durationMs } from './duration';

/** Lifecycle events a run publishes, in the order a run can go through them. */
const RUN_EVENTS = [
  'requested',
  'denied',
  'approval_needed',
  'changes_requested',
  'approved',
  'rejected',
  'expired',
  'dispatched',
  'succeeded',
  'manually_completed',
  'failed',
  'cancelled',
  // Break-glass: a release, and its post-hoc review ending (confirmed, flagged or overdue).
  'break_glass_used',
  'break_glass_confirmed',
  'break_glass_flagged',
  'break_glass_review_overdue',
  'revoked',
] as const;
export type RunEventName = (typeof RUN_EVENTS)[number];

/** Egress allow-list key that subscriber URLs are checked against. */
export const EVENTS_EGRESS_KEY = 'events';

const url = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'expected an http or https URL')
  .refine((u) => !new URL(u).username && !new URL(u).password, 'credentials do not belong in the URL; use the secret store');

const timeout = z
  .string()
  .regex(DURATION_PATTERN, 'expected a duration such as 500ms, 5s or 30s')
  .transform((d) => durationMs(d))
  .refine((v) => v > 0 && v <= 60_000, 'must be more than 0 and at most 60s');

export const Subscriber = z.strictObject({
  /** Names the subscriber in `status.events` and in the secret field of a bearer token. */
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a subscriber id (lower case, digits, - and _)'),
  /** Where events are POSTed, e.g. an Activepieces webhook `https://ap.example.com/api/v1/webhooks/<flowId>`. */
  url,
  /** Events it receives: names from RUN_EVENTS, or `*` for all. @default ["*"] */
  events: z.array(z.union([z.enum(RUN_EVENTS), z.literal('*')])).min(1).default(['*']),
  /** `structured`: the whole event as `application/cloudevents+json`; `binary`: `ce-*` headers and the data as the body. @default structured */
  mode: z.enum(['structured', 'binary']).default('structured'),
  /** `bearer`: `Authorization: Bearer <token>` with the token from the secret store (runtime `events`, field `<id>.token` or `token`). @default none */
  auth: z.enum(['none', 'bearer']).default('none'),
  /** Longest one delivery may take. @default 10s */
  timeout: timeout.default(10_000),
});
export type Subscriber = z.infer<typeof Subscriber>;

export const Subscribers = z.array(Subscriber).max(20).superRefine((subs, ctx) => {
  const seen = new Set<string>();
  subs.forEach((s, i) => {
    if (seen.has(s.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate subscriber id ${s.id}` });
    seen.add(s.id);
  });
});

/** Whether `sub` wants events named `name`. */
export function subscribes(sub: Pick<Subscriber, 'events'>, name: string): boolean {
  return sub.events.some((e) => e === '*' || e === name);
}
