/**
 * What a Langflow tweak may change: the per-flow allow-list of component fields in a workspace's
 * `connections.langflow.flows.<flow>.tweaks`, and which fields switch agent tools on. Pure: no I/O.
 * Used by the Langflow adapter before it sends a run and by `portarium policy check` (lint); not part
 * of the workflow bundle. MAINTENANCE: keep docs/runtimes.md "Langflow tweaks" in sync.
 */
import { z } from 'zod';

/** A component template field name, as Langflow spells them (a Python identifier). */
export const TweakField = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'expected a component field name such as temperature')
  .refine((f) => f !== '__proto__', 'not a field name');

/**
 * A tweak key: a node id (`Agent-x1y2`), a component name (`Agent`) or a display name (`Chat Input`).
 * `__proto__` would vanish when a record is rebuilt, so a tweak under it would go unchecked.
 */
export const TweakKey = z
  .string()
  .min(1)
  .max(256)
  .refine((k) => k !== '__proto__' && !/[\u0000-\u001f\u007f]/.test(k), 'expected a component name, node id or display name');

/** Per component (name, node id or display name): the only fields a run's tweaks may set. */
export const TweakAllowList = z.record(TweakKey, z.array(TweakField).max(200));
export type TweakAllowList = z.infer<typeof TweakAllowList>;

export const LangflowFlowPolicy = z.strictObject({
  /** Fields a tweak may set, per component. Anything not listed is refused before sending. @default {} (no tweaks) */
  tweaks: TweakAllowList.default({}),
});
export type LangflowFlowPolicy = z.infer<typeof LangflowFlowPolicy>;

/**
 * Fields Langflow itself refuses to tweak (422 `TWEAKS_REFUSED`): component code, and the code or
 * sandbox fields of code-running components. Listing one in an allow-list is a mistake lint reports.
 */
export const LANGFLOW_PROTECTED_FIELDS: ReadonlySet<string> = new Set(['code', 'python_code', 'function_code', 'tool_code', 'global_imports', 'allow_dangerous_code', 'filter_instruction']);

/** Component name of a tweak key: the part before the last `-` (`SearchAPI-x1y2` gives `SearchAPI`). */
export function componentName(key: string): string {
  const i = key.lastIndexOf('-');
  return i > 0 ? key.slice(0, i) : key;
}

/** Fields the allow-list admits for a tweak key: its exact entry plus its component name's. */
export function allowedFields(allow: TweakAllowList | undefined, key: string): readonly string[] {
  if (!allow) return [];
  const own = (k: string) => (Object.hasOwn(allow, k) ? allow[k] : []);
  const name = componentName(key);
  return name === key ? own(key) : [...own(key), ...own(name)];
}

/** Words of a name: `add_calculator_tool`, `addCalculatorTool` -> [add, calculator, tool]. */
function words(name: string): string[] {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/**
 * A field that switches agent tools on: its name has the word `tool` or `tools` (`add_calculator_tool`,
 * `tools`, `tools_metadata`, `tool_mode`). Langflow 1.13 ignores `tool_mode`; it still counts, so an
 * older server that honours it cannot turn a tool on unseen.
 */
export function isToolField(field: string): boolean {
  return words(field).some((w) => w === 'tool' || w === 'tools');
}

/** Words that say "switch on" rather than which tool. */
const FILLER = new Set(['add', 'enable', 'enabled', 'use', 'with', 'as', 'tool', 'tools', 'mode']);
const TRUE_TEXT = new Set(['true', 'yes', 'on', '1']);

/** Python-falsy values (and the text "false") leave a tool off; anything else turns it on. */
function switchesOn(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 0 || value === '' || value === 'false') return false;
  return !(Array.isArray(value) && value.length === 0);
}

/** The tool a flag field names: `add_calculator_tool` gives `calculator`; a bare `tool_mode` the component's name. */
export function fieldToolName(field: string, component: string): string {
  const rest = words(field).filter((w) => !FILLER.has(w));
  return rest.length ? rest.join('_') : component;
}

/**
 * Tools one tweaked tool field switches on, or undefined when its value lists tools in a form that
 * cannot be read (then the tweak is refused). A list names its tools (strings, or objects with a
 * `name`); a text value other than "true" names one tool besides the field's own.
 */
export function toolsOfField(field: string, component: string, value: unknown): string[] | undefined {
  // Langflow copies an object tweak's keys onto the field: `{value: x}` sets the value x.
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'value')) value = (value as { value: unknown }).value;
  if (!switchesOn(value)) return [];
  if (Array.isArray(value)) {
    const names = value.map((item: unknown) => (typeof item === 'string' ? item : typeof (item as { name?: unknown } | null)?.name === 'string' ? (item as { name: string }).name : ''));
    return names.some((n) => !n) ? undefined : [...new Set(names)];
  }
  const tools = [fieldToolName(field, component)];
  if (typeof value === 'string' && !TRUE_TEXT.has(value.toLowerCase())) tools.push(value);
  return tools;
}
