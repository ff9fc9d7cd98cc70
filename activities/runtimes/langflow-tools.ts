/**
 * What a Langflow run's tweaks may change, and which agent tools the run switches on. Pure: no I/O.
 * Policy already weighed the declared tools when it decided the run (`policies/evaluate.ts`). The check
 * runs again at dispatch because tweaks can switch on tools nobody declared (Langflow 1.13: component
 * fields such as an Agent's `add_calculator_tool`), because the workspace's allow-lists may have been
 * tightened since the decision, and because a run must never carry a tool whose class needs a
 * stricter tier than the one it was decided at. Tweaks are denied unless the flow's allow-list names
 * the field (`connections.langflow.flows.<flow>.tweaks`).
 */
import { type TweakAllowList, allowedFields, componentName, isToolField, toolsOfField } from '../../policies/langflow-tweaks';
import type { ToolClass } from '../../policies/schema';
import { TOOL_CLASS_TIER, classifyTool } from '../../policies/tools';
import { type Tier, isStricterTier } from '../../workflows/types';

export { componentName } from '../../policies/langflow-tweaks';


type Tweaks = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** What the check needs from the request and the workspace's current policy. */
export interface ToolCheck {
  /** Flow id or endpoint name: the key of `flowTools`. */
  target: string;
  /** `action.tools`, the tools policy decided on. */
  declared: readonly string[];
  /** Tweaks the run sends, by component id. */
  tweaks: Tweaks;
  /** Tier the run was decided at. Missing counts as Auto, so every tool needs the weakest class. */
  tier?: Tier;
  flowTools?: Readonly<Record<string, readonly string[]>>;
  toolClasses?: Readonly<Record<string, ToolClass>>;
}

/** Tools the tweaks switch on, or a reason when a tool field's value cannot be read. */
function tweakTools(tweaks: Tweaks, declared: ReadonlySet<string>): { tools: string[] } | { unreadable: string } {
  const found = new Set<string>();
  for (const [key, fields] of Object.entries(tweaks)) {
    const name = componentName(key);
    // A component named like a declared tool is that tool, configured.
    if (declared.has(name)) found.add(name);
    for (const [field, value] of Object.entries(fields)) {
      if (!isToolField(field)) continue;
      const tools = toolsOfField(field, name, value);
      if (!tools) return { unreadable: `${key}.${field}` };
      for (const t of tools) found.add(t);
    }
  }
  return { tools: [...found] };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The flow's tool allow-list: own properties only (`constructor` finds nothing), a flow id in any letter case. */
function flowAllowList(flowTools: ToolCheck['flowTools'], target: string): readonly string[] | undefined {
  if (!flowTools) return undefined;
  if (Object.hasOwn(flowTools, target)) return flowTools[target];
  if (!UUID.test(target)) return undefined;
  const key = Object.keys(flowTools).find((k) => k.toLowerCase() === target.toLowerCase());
  return key === undefined ? undefined : flowTools[key];
}

/** Why this run may not enable its tools, or undefined when it may. */
export function toolRefusal(c: ToolCheck): string | undefined {
  const declared = new Set(c.declared);
  const fromTweaks = tweakTools(c.tweaks, declared);
  if ('unreadable' in fromTweaks) return `tweak ${fromTweaks.unreadable} lists tools in a form that cannot be checked (expected tool names, or objects with a name)`;
  const undeclared = fromTweaks.tools.find((t) => !declared.has(t));
  if (undeclared) return `a tweak switches on tool ${undeclared}, but the action did not declare tool ${undeclared}, so policy never governed it`;
  const allowed = flowAllowList(c.flowTools, c.target);
  // Langflow takes a flow by id (in any letter case) or by endpoint name: where the workspace keeps
  // per-flow allow-lists, another name for a listed flow must not escape its list, so no entry, no tools.
  if (!allowed && declared.size > 0 && c.flowTools && Object.keys(c.flowTools).length > 0) {
    return `flow ${c.target} has no entry in defaults.flowTools, which lists the tools each flow may use; add it (by the name runs use) to let runs enable tools`;
  }
  const tier = c.tier ?? 'Auto';
  for (const tool of declared) {
    if (allowed && !allowed.includes(tool)) return `tool ${tool} is not on the allow-list of flow ${c.target}`;
    const cls = classifyTool(tool, c.toolClasses);
    const floor = TOOL_CLASS_TIER[cls];
    if (isStricterTier<Tier>(floor, tier)) return `tool ${tool} (${cls}) needs tier ${floor} or stricter, but the run was decided at ${tier}`;
  }
  return undefined;
}

/** Most refused fields a refusal names. */
const MAX_NAMED = 20;

/**
 * Langflow copies every key of an object tweak value onto the template field; `load_from_db: true` turns
 * the value into the name of a stored global variable (a credential), read into that field. No allow-list
 * grants that: an allowed text field would carry a Langflow secret into the prompt and the answer.
 */
const readsGlobalVariable = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'load_from_db');

/** Tweaked fields (`key.field`) the flow's allow-list does not admit; empty when every one is admitted. */
export function refusedTweaks(tweaks: Tweaks, allow: TweakAllowList | undefined): string[] {
  const refused: string[] = [];
  for (const [key, fields] of Object.entries(tweaks)) {
    const admitted = allowedFields(allow, key);
    for (const [field, value] of Object.entries(fields)) {
      if (!admitted.includes(field)) refused.push(`${key}.${field}`);
      else if (readsGlobalVariable(value)) refused.push(`${key}.${field}.load_from_db`);
      if (refused.length >= MAX_NAMED) return refused;
    }
  }
  return refused;
}
