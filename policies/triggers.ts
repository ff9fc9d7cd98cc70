/**
 * Trigger routes: which CloudEvents start which governed runs. A workspace file's `triggers` section
 * maps an event's `type` and `source` to a workspace, an action and a requester. Like connections,
 * triggers are not part of the decision snapshot: they decide which run is asked for, not how it is
 * decided, so adding a route never changes a workspace's `policyHash`. Pure: no I/O.
 * MAINTENANCE: keep docs/triggers.md in sync.
 */
import { z } from 'zod';
import { TIER_ORDER } from './vocabulary';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/, 'expected an identifier');
/** Exact text, or a prefix ending in `*`; a list matches any of its items (as in rule patterns). */
const pattern = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const Trigger = z.strictObject({
  /** Unique within the workspace file. */
  id: name,
  description: z.string().max(1000).optional(),
  /** Both must match; `type` is required so a route never catches every event by accident. */
  match: z.strictObject({ type: pattern, source: pattern.optional() }),
  /** The governed action; `input` holds defaults that the event's data overlays. Checked at load against the run's action schema. */
  action: z.strictObject({
    runtime: z.string(),
    target: z.string(),
    operation: z.string(),
    input: z.record(z.string(), z.unknown()).optional(),
    tools: z.array(z.string()).optional(),
  }),
  /** Who the run is requested by: the service identity the route speaks for. */
  requestedBy: z.strictObject({ id: name, roles: z.array(name) }),
  /** @default "<type> from <source>" */
  reason: z.string().min(1).max(2000).optional(),
  tierOverride: z.enum(TIER_ORDER).optional(),
});
export type Trigger = z.infer<typeof Trigger>;

/** One workspace's routes, in file order. */
export interface WorkspaceTriggers {
  workspaceId: string;
  triggers: readonly Trigger[];
}

export interface EventKey {
  type: string;
  source: string;
  /** The event's `workspaceid` extension, when present. */
  workspaceId?: string;
}

export type RouteResult =
  | { ok: true; workspaceId: string; trigger: Trigger }
  | { ok: false; error: 'TriggerNotRouted' | 'TriggerAmbiguous'; message: string; workspaces?: string[] };

export function matchesPattern(p: string | string[] | undefined, value: string): boolean {
  if (p === undefined) return true;
  return (Array.isArray(p) ? p : [p]).some((x) => (x.endsWith('*') ? value.startsWith(x.slice(0, -1)) : x === value));
}

/**
 * The route for an event: the first matching trigger of each workspace; more than one workspace
 * matching is refused (a route must be unambiguous), as is none. A `workspaceid` extension
 * restricts matching to that workspace.
 */
export function routeEvent(all: readonly WorkspaceTriggers[], ev: EventKey): RouteResult {
  const candidates = ev.workspaceId === undefined ? all : all.filter((w) => w.workspaceId === ev.workspaceId);
  const hits: { workspaceId: string; trigger: Trigger }[] = [];
  for (const ws of candidates) {
    const trigger = ws.triggers.find((t) => matchesPattern(t.match.type, ev.type) && matchesPattern(t.match.source, ev.source));
    if (trigger) hits.push({ workspaceId: ws.workspaceId, trigger });
  }
  const where = ev.workspaceId === undefined ? '' : ` in workspace ${ev.workspaceId}`;
  if (!hits.length) return { ok: false, error: 'TriggerNotRouted', message: `no trigger route for type ${ev.type} from source ${ev.source}${where}` };
  if (hits.length > 1) {
    const workspaces = hits.map((h) => h.workspaceId);
    return { ok: false, error: 'TriggerAmbiguous', workspaces,
      message: `type ${ev.type} from source ${ev.source} matches routes in ${workspaces.length} workspaces (${hits.map((h) => `${h.workspaceId}/${h.trigger.id}`).join(', ')}); add a workspaceid extension or narrow the routes` };
  }
  return { ok: true, ...hits[0] };
}
