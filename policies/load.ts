/**
 * Reads and checks a policy directory: `defaults.json` plus one `<workspace>.json` per workspace.
 * Node-only (file I/O): used by the worker at start and by `portarium policy check`, never by workflows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { canonicalJson, sha256Hex } from '../workflows/hashing';
import { DefaultsFile, type PolicySnapshot, WorkspaceFile } from './schema';

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
  /** The frozen snapshot a run of this workspace is decided by (deny-all for unknown workspaces). */
  snapshotFor(workspaceId: string): PolicySnapshot;
}

function parseFile<T>(file: string, schema: z.ZodType<T>, problems: PolicyProblem[]): T | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push({ file, path: '(file)', message: `not readable JSON: ${(err as Error).message}` });
    return undefined;
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    problems.push({ file, path: issue.path.length ? issue.path.join('.') : '(root)', message: issue.message });
  }
  return undefined;
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
  };
  return deepFreeze({ policyHash: sha256Hex(canonicalJson(content)), ...content });
}

/** Load and check every policy file of `dir`; throws `PolicyLoadError` listing all problems. */
export function loadPolicyDir(dir: string): LoadedPolicies {
  const problems: PolicyProblem[] = [];
  const defaultsPath = path.join(dir, 'defaults.json');
  if (!fs.existsSync(defaultsPath)) {
    throw new PolicyLoadError([{ file: defaultsPath, path: '(file)', message: 'missing: every policy directory needs defaults.json' }]);
  }
  const defaults = parseFile(defaultsPath, DefaultsFile, problems);
  const workspaces = new Map<string, WorkspaceFile>();
  for (const name of fs.readdirSync(dir).sort()) {
    if (!name.endsWith('.json') || name === 'defaults.json') continue;
    const file = path.join(dir, name);
    const ws = parseFile(file, WorkspaceFile, problems);
    if (!ws) continue;
    if (ws.workspace !== name.slice(0, -'.json'.length)) {
      problems.push({ file, path: 'workspace', message: `must equal the file name (${name.slice(0, -5)}), got ${ws.workspace}` });
      continue;
    }
    const ruleIds = new Set<string>();
    [...(defaults?.rules ?? []), ...ws.rules].forEach((rule, i) => {
      if (ruleIds.has(rule.id)) problems.push({ file, path: `rules.${i}.id`, message: `duplicate rule id ${rule.id}` });
      ruleIds.add(rule.id);
    });
    workspaces.set(ws.workspace, ws);
  }
  if (problems.length || !defaults) throw new PolicyLoadError(problems);
  const snapshots = new Map<string, PolicySnapshot>();
  for (const [id, ws] of workspaces) snapshots.set(id, makeSnapshot(id, defaults, ws));
  return {
    dir,
    workspaces: [...workspaces.keys()],
    snapshotFor: (workspaceId) => snapshots.get(workspaceId) ?? makeSnapshot(workspaceId, defaults, undefined),
  };
}
