/**
 * Reads and checks a policy directory: `defaults` plus one `<workspace>` file per workspace, each in
 * JSON (`.json`) or YAML (`.yaml`, `.yml`).
 * Node-only (file I/O): used by the worker at start and by `portarium policy check`, never by workflows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { canonicalJson, sha256Hex } from '../../workflows/hashing';
import { compileCondition } from '../../policies/condition';
import { orderedGuardWarnings } from '../../policies/condition-lint';
import { ownValue } from '../../policies/own';
import type { WorkspaceConnections } from '../../policies/connections';
import { allowListAdmits } from '../../policies/egress';
import { LANGFLOW_PROTECTED_FIELDS, componentName, fieldToolName, isToolField } from '../../policies/langflow-tweaks';
import { snapshotQuotas } from '../../policies/quotas';
import { snapshotBreakGlass } from '../../policies/break-glass';
import { DefaultsFile, type PolicySnapshot, WorkspaceFile } from '../../policies/schema';
import { type Isolation, TaskQueueRouting } from '../../policies/isolation';
import { EVENTS_EGRESS_KEY, type Subscriber } from '../../policies/subscribers';
import type { WorkspaceTriggers } from '../../policies/triggers';
import { actionSchema, check } from '../../workflows/schemas';

export interface PolicyProblem {
  file: string;
  /** Path inside the file, e.g. `rules.2.tier`; `(file)` for problems with the file itself. */
  path: string;
  message: string;
}

export class PolicyLoadError extends Error {
  override readonly name = 'PolicyLoadError';
  constructor(readonly problems: PolicyProblem[]) {
    super(`invalid policy files:\n${problems.map((p) => `  ${p.file}: ${p.path}: ${p.message}`).join('\n')}`);
  }
}

export interface LoadedPolicies {
  dir: string;
  workspaces: string[];
  /**
   * Things that load but deserve a look, e.g. an ordered comparison guarding a stricter rule that
   * overlaps a looser one (policies/condition-lint.ts). `portarium policy check` prints them.
   */
  warnings: PolicyProblem[];
  /** The frozen snapshot a run of this workspace is decided by (deny-all for unknown workspaces). */
  snapshotFor(workspaceId: string): PolicySnapshot;
  /** The workspace's runtime connections and egress allow-list (empty, so deny-all, when unknown). */
  connectionsFor(workspaceId: string): WorkspaceConnections;
  /** The workspace's event subscribers (none when unknown). */
  subscribersFor(workspaceId: string): readonly Subscriber[];
  /** Every workspace's CloudEvent trigger routes, in workspace then file order (not part of any snapshot). */
  triggers(): readonly WorkspaceTriggers[];
  /** Each workspace's task queue, from its `isolation` setting, under the base queue name `base`. */
  routing(base: string): TaskQueueRouting;
}

function parseFile<T>(file: string, schema: z.ZodType<T>, problems: PolicyProblem[]): T | undefined {
  let raw: unknown;
  const yaml = !file.endsWith('.json');
  try {
    const text = fs.readFileSync(file, 'utf8');
    raw = yaml ? parseYaml(text, { prettyErrors: true, uniqueKeys: true }) : JSON.parse(text);
  } catch (err) {
    problems.push({ file, path: '(file)', message: `not readable ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}` });
    return undefined;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    problems.push({ file, path: issue.path.length ? issue.path.join('.') : '(root)', message: issue.message });
  }
  return undefined;
}

/** Rule ids unique across defaults and workspace; every `when` compiles. */
function checkRules(file: string, ws: WorkspaceFile, defaults: DefaultsFile | undefined, problems: PolicyProblem[]): void {
  const ids = new Set((defaults?.rules ?? []).map((r) => r.id));
  ws.rules.forEach((rule, i) => {
    if (ids.has(rule.id)) problems.push({ file, path: `rules.${i}.id`, message: `duplicate rule id ${rule.id}` });
    ids.add(rule.id);
    if (rule.when !== undefined) {
      const compiled = compileCondition(rule.when);
      if (!compiled.ok) problems.push({ file, path: `rules.${i}.when`, message: compiled.error });
    }
  });
}

/** Warnings over the rules a workspace's runs are decided by: the defaults' rules, then its own. */
function warnAboutConditions(file: string, defaultsFile: string, ws: WorkspaceFile, defaults: DefaultsFile | undefined, warnings: PolicyProblem[]): void {
  const inherited = defaults?.rules ?? [];
  for (const w of orderedGuardWarnings([...inherited, ...ws.rules])) {
    const own = w.index >= inherited.length;
    warnings.push({ file: own ? file : defaultsFile, path: `rules.${own ? w.index - inherited.length : w.index}.when`, message: `${own ? '' : `(in workspace ${ws.workspace}) `}${w.message}` });
  }
}

/**
 * A connection whose egress rule refuses its own URL is a typo that would fail every run: report it
 * when policies load. A connection with no egress rule at all is the runtime switched off for the
 * workspace (every call refused), which is allowed.
 */
function checkConnections(file: string, ws: WorkspaceFile, problems: PolicyProblem[]): void {
  for (const [runtime, conn] of Object.entries(ws.connections ?? {})) {
    if (!conn || !ownValue(ws.egress, runtime)) continue;
    const urls: [string, string][] = [['baseUrl', conn.baseUrl]];
    if ('authUrl' in conn && conn.authUrl) urls.push(['authUrl', conn.authUrl]);
    for (const [field, url] of urls) {
      if (!allowListAdmits(ownValue(ws.egress, runtime), new URL(url))) {
        problems.push({ file, path: `connections.${runtime}.${field}`, message: `${new URL(url).host} is not on egress.${runtime}.hosts, so every call would be refused` });
      }
    }
  }
}

/**
 * Tweak allow-list entries that cannot work as written: a field Langflow itself refuses to tweak, the
 * `tool_mode` field Langflow 1.13 ignores, and a tool field whose tool the flow's `flowTools` list
 * leaves out (every run setting it would be refused).
 */
function warnAboutTweaks(file: string, ws: WorkspaceFile, defaults: DefaultsFile | undefined, warnings: PolicyProblem[]): void {
  const flowTools = ws.defaults?.flowTools ?? defaults?.defaults.flowTools;
  for (const [flow, policy] of Object.entries(ws.connections?.langflow?.flows ?? {})) {
    const tools = ownValue(flowTools, flow);
    for (const [component, fields] of Object.entries(policy.tweaks)) {
      fields.forEach((field, i) => {
        const at = `connections.langflow.flows.${flow}.tweaks.${component}.${i}`;
        if (LANGFLOW_PROTECTED_FIELDS.has(field)) warnings.push({ file, path: at, message: `Langflow refuses tweaks to ${field} (a protected field): every run that sets it fails with 422` });
        else if (field === 'tool_mode') warnings.push({ file, path: at, message: 'Langflow 1.13 ignores tool_mode: it switches no tool on (tools are switched on by component fields such as add_calculator_tool)' });
        else if (isToolField(field) && tools && !tools.includes(fieldToolName(field, componentName(component)))) {
          warnings.push({ file, path: at, message: `${field} switches on tool ${fieldToolName(field, componentName(component))}, which defaults.flowTools.${flow} leaves out: every run that sets it is refused` });
        }
      });
    }
  }
}

/** A subscriber its workspace's egress rule refuses would never receive anything: report it at load. */
function checkSubscribers(file: string, ws: WorkspaceFile, problems: PolicyProblem[]): void {
  (ws.subscribers ?? []).forEach((sub, i) => {
    if (!allowListAdmits(ownValue(ws.egress, EVENTS_EGRESS_KEY), new URL(sub.url))) {
      problems.push({ file, path: `subscribers.${i}.url`, message: `${new URL(sub.url).host} is not on egress.${EVENTS_EGRESS_KEY}.hosts, so no event would reach it` });
    }
  });
}

/** Trigger ids unique in the file; each route's action is one `governedRun` would accept. */
function checkTriggers(file: string, ws: WorkspaceFile, problems: PolicyProblem[]): void {
  const ids = new Set<string>();
  (ws.triggers ?? []).forEach((t, i) => {
    if (ids.has(t.id)) problems.push({ file, path: `triggers.${i}.id`, message: `duplicate trigger id ${t.id}` });
    ids.add(t.id);
    const r = check(actionSchema(), { ...t.action, input: t.action.input ?? {} });
    if (!r.ok) for (const issue of r.issues) problems.push({ file, path: `triggers.${i}.action.${issue.path}`, message: issue.message });
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function makeSnapshot(workspaceId: string, defaults: DefaultsFile, ws: WorkspaceFile | undefined): PolicySnapshot {
  const content = {
    workspaceId,
    workspaceKnown: ws !== undefined,
    defaults: { ...defaults.defaults, ...(ws?.defaults ?? {}) },
    rules: ws ? [...defaults.rules, ...ws.rules] : [],
    // Inside the hash (it decides who may release), and absent without it: other hashes stay as they were.
    ...(ws?.breakGlass && { breakGlass: snapshotBreakGlass(ws.breakGlass) }),
  };
  const quotas = snapshotQuotas(ws?.quotas);
  return deepFreeze({
    policyHash: sha256Hex(canonicalJson(content)),
    ...content,
    publishesEvents: (ws?.subscribers?.length ?? 0) > 0,
    // Absent, not empty, without quotas: snapshots of workspaces without them stay as they were.
    ...(quotas && { quotas }),
  });
}

const POLICY_FILE = /^(.+)\.(json|ya?ml)$/;

/** What `checkPolicyDir` found: the loaded policies (with warnings), or every problem. */
export type PolicyCheck = { ok: true; policies: LoadedPolicies } | { ok: false; problems: PolicyProblem[] };

/** `loadPolicyDir` without the throw, for tooling that reports problems (what `portarium policy check` prints). */
export function checkPolicyDir(dir: string): PolicyCheck {
  try {
    return { ok: true, policies: loadPolicyDir(dir) };
  } catch (err) {
    if (err instanceof PolicyLoadError) return { ok: false, problems: err.problems };
    throw err;
  }
}

/** Load and check every policy file of `dir`; throws `PolicyLoadError` listing all problems. */
export function loadPolicyDir(dir: string): LoadedPolicies {
  const problems: PolicyProblem[] = [];
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new PolicyLoadError([{ file: dir, path: '(file)', message: 'not a directory' }]);
  }
  const files = fs.readdirSync(dir).sort().filter((n) => POLICY_FILE.test(n));
  const stems = files.map((n) => POLICY_FILE.exec(n)![1]);
  stems.forEach((stem, i) => {
    if (stems.indexOf(stem) !== i) problems.push({ file: path.join(dir, files[i]), path: '(file)', message: `a second file for ${stem}` });
  });
  const defaultsName = files.find((n) => POLICY_FILE.exec(n)![1] === 'defaults');
  if (!defaultsName) {
    throw new PolicyLoadError([{ file: path.join(dir, 'defaults.json'), path: '(file)', message: 'missing: every policy directory needs a defaults file (.json, .yaml or .yml)' }]);
  }
  const defaults = parseFile(path.join(dir, defaultsName), DefaultsFile, problems);
  const workspaces = new Map<string, WorkspaceFile>();
  const warnings: PolicyProblem[] = [];
  for (const name of files) {
    const stem = POLICY_FILE.exec(name)![1];
    if (stem === 'defaults') continue;
    const file = path.join(dir, name);
    const ws = parseFile(file, WorkspaceFile, problems);
    if (!ws) continue;
    if (ws.workspace !== stem) {
      problems.push({ file, path: 'workspace', message: `must equal the file name (${stem}), got ${ws.workspace}` });
      continue;
    }
    checkRules(file, ws, defaults, problems);
    warnAboutConditions(file, path.join(dir, defaultsName), ws, defaults, warnings);
    checkConnections(file, ws, problems);
    warnAboutTweaks(file, ws, defaults, warnings);
    checkSubscribers(file, ws, problems);
    checkTriggers(file, ws, problems);
    workspaces.set(ws.workspace, ws);
  }
  if (problems.length || !defaults) throw new PolicyLoadError(problems);
  const snapshots = new Map<string, PolicySnapshot>();
  for (const [id, ws] of workspaces) snapshots.set(id, makeSnapshot(id, defaults, ws));
  const connections = new Map<string, WorkspaceConnections>();
  for (const [id, ws] of workspaces) connections.set(id, deepFreeze({ workspaceId: id, connections: ws.connections ?? {}, egress: ws.egress ?? {} }));
  const triggers = deepFreeze([...workspaces].filter(([, ws]) => ws.triggers?.length).map(([id, ws]) => ({ workspaceId: id, triggers: ws.triggers! })));
  const isolation = new Map<string, Isolation>([...workspaces].map(([id, ws]) => [id, ws.isolation ?? 'shared']));
  return {
    dir,
    triggers: () => triggers,
    routing: (base) => new TaskQueueRouting(base, isolation),
    workspaces: [...workspaces.keys()],
    warnings,
    snapshotFor: (workspaceId) => snapshots.get(workspaceId) ?? makeSnapshot(workspaceId, defaults, undefined),
    connectionsFor: (workspaceId) => connections.get(workspaceId) ?? deepFreeze({ workspaceId, connections: {}, egress: {} }),
    subscribersFor: (workspaceId) => deepFreeze(workspaces.get(workspaceId)?.subscribers ?? []),
  };
}
