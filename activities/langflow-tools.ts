/**
 * Which agent tools a Langflow run switches on, and whether this run may. Pure: no I/O.
 * Policy already weighed the declared tools when it decided the run (`policies/evaluate.ts`). The check
 * runs again at dispatch because tweaks can switch on tools nobody declared, because the workspace's
 * allow-list may have been tightened since the decision, and because a run must never carry a tool
 * whose class needs a stricter tier than the one it was decided at.
 */
import type { ToolClass } from '../policies/schema';
import { TOOL_CLASS_TIER, classifyTool } from '../policies/tools';
import type { Tier } from '../workflows/types';

// MAINTENANCE: same order as STRENGTH in policies/evaluate.ts.
const STRENGTH: Record<Tier, number> = { Auto: 0, Assisted: 1, HumanApprove: 2, ManualOnly: 3 };

/** What the check needs from the request and the workspace's current policy. */
export interface ToolCheck {
  /** Flow id or endpoint name: the key of `flowTools`. */
  target: string;
  /** `action.tools`, the tools policy decided on. */
  declared: readonly string[];
  /** Tweaks the run sends, by component id. */
  tweaks: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Tier the run was decided at. Missing counts as Auto, so every tool needs the weakest class. */
  tier?: Tier;
  flowTools?: Readonly<Record<string, readonly string[]>>;
  toolClasses?: Readonly<Record<string, ToolClass>>;
}

/** Component name of a tweak key: the part before the last `-` (`SearchAPI-x1y2` gives `SearchAPI`). */
export function componentName(key: string): string {
  const i = key.lastIndexOf('-');
  return i > 0 ? key.slice(0, i) : key;
}

/** Anything but an explicit "off" counts as on: an odd value must not slip a tool past the check. */
function switchesOn(value: unknown): boolean {
  return value !== undefined && value !== null && value !== false && value !== 0 && value !== 'false';
}

/** Tools the tweaks switch on: components named like a declared tool, and any component put in tool mode. */
export function tweakTools(tweaks: ToolCheck['tweaks'], declared: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  for (const [key, fields] of Object.entries(tweaks)) {
    const name = componentName(key);
    if (declared.has(name) || switchesOn(fields.tool_mode)) found.add(name);
  }
  return [...found];
}

/** Why this run may not enable its tools, or undefined when it may. */
export function toolRefusal(c: ToolCheck): string | undefined {
  const declared = new Set(c.declared);
  const fromTweaks = tweakTools(c.tweaks, declared);
  const undeclared = fromTweaks.find((t) => !declared.has(t));
  if (undeclared) return `a tweak puts component ${undeclared} in tool mode, but the action did not declare tool ${undeclared}, so policy never governed it`;
  // Own-property lookups only: a target such as `constructor` must not find Object.prototype members.
  const allowed = c.flowTools && Object.hasOwn(c.flowTools, c.target) ? c.flowTools[c.target] : undefined;
  const tier = c.tier ?? 'Auto';
  for (const tool of declared) {
    if (allowed && !allowed.includes(tool)) return `tool ${tool} is not on the allow-list of flow ${c.target}`;
    const cls = classifyTool(tool, c.toolClasses);
    const floor = TOOL_CLASS_TIER[cls];
    if (STRENGTH[floor] > STRENGTH[tier]) return `tool ${tool} (${cls}) needs tier ${floor} or stricter, but the run was decided at ${tier}`;
  }
  return undefined;
}
