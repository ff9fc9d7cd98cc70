/**
 * Agent-tool blast radius: the least tier a run may have given the tools it enables. Pure.
 * A workspace's `toolClasses` overrides the name-based default; unknown tools count as mutating.
 * MAINTENANCE: keep README "Agent tools" in sync.
 */
import type { ToolClass } from './schema';

type Tierish = 'Auto' | 'HumanApprove' | 'ManualOnly';

/** Least tier per class. `Unknown` (no class, no recognised word) is treated as mutating. */
export const TOOL_CLASS_TIER: Record<ToolClass | 'Unknown', Tierish> = {
  ReadOnly: 'Auto',
  Mutating: 'HumanApprove',
  Unknown: 'HumanApprove',
  Dangerous: 'ManualOnly',
};

const DANGEROUS = new Set(['shell', 'bash', 'sh', 'zsh', 'cmd', 'powershell', 'exec', 'eval', 'subprocess', 'terminal', 'browser', 'playwright', 'puppeteer', 'selenium', 'install', 'sudo', 'ssh', 'python', 'repl']);
const MUTATING = new Set(['write', 'create', 'update', 'delete', 'remove', 'send', 'post', 'put', 'patch', 'deploy', 'publish', 'transfer', 'charge', 'refund', 'pay', 'email', 'upload', 'insert', 'drop', 'grant', 'revoke', 'merge', 'push', 'cancel', 'approve']);
const READ_ONLY = new Set(['read', 'get', 'list', 'search', 'query', 'fetch', 'find', 'lookup', 'summarize', 'summarise', 'describe', 'view', 'count', 'calculator', 'calculate']);

/** Words of a tool name: `send_email`, `sendEmail`, `send-email` -> [send, email]. */
function words(tool: string): string[] {
  return tool.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

/** The class of a tool: explicit override first, then the most dangerous word it contains. */
export function classifyTool(tool: string, overrides: Readonly<Record<string, ToolClass>> = {}): ToolClass | 'Unknown' {
  if (Object.prototype.hasOwnProperty.call(overrides, tool)) return overrides[tool];
  const w = words(tool);
  if (w.some((x) => DANGEROUS.has(x))) return 'Dangerous';
  if (w.some((x) => MUTATING.has(x))) return 'Mutating';
  if (w.some((x) => READ_ONLY.has(x))) return 'ReadOnly';
  return 'Unknown';
}
