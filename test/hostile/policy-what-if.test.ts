/**
 * Hostile evidence and payload stores against `portarium policy what-if`: a log or payload folder
 * edited outside Portarium. Each case asserts what its user sees: the report still comes out (exit 0),
 * the affected run is counted as not re-evaluable instead of decided on a guessed or foreign input,
 * and nothing outside the payload store is read.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WhatIfReport } from '../../activities/policy/what-if';
import { main } from '../../workers/cli';
import { PROJECT_ROOT } from '../../workers/config';
import { DEV_KEYS } from '../support/shared';

const FIXTURE = path.join(PROJECT_ROOT, 'test', 'fixtures', 'whatif');
const WRITE_1 = 'demo:whatif-write-1';

let dir: string;

/** A copy of the shipped policies where a write is allowed only for a message of "hey": it reads the input. */
function readingPolicies(): string {
  const p = path.join(dir, 'policies');
  fs.cpSync(path.join(PROJECT_ROOT, 'policies', 'sets'), p, { recursive: true });
  const demo = JSON.parse(fs.readFileSync(path.join(p, 'demo.json'), 'utf8')) as { rules: { id: string; when?: string }[] };
  demo.rules = demo.rules.map((r) => (r.id === 'demo-echo-write' ? { ...r, when: "action.input.message == 'hey'" } : r));
  fs.writeFileSync(path.join(p, 'demo.json'), JSON.stringify(demo));
  return p;
}

const entriesFile = () => path.join(dir, 'evidence', 'demo', 'entries.jsonl');

/** Rewrite the stored log line by line (records parsed), as someone with the files could. */
function editLog(edit: (record: { wsSeq: number; entry: Record<string, unknown> }) => unknown): void {
  const lines = fs.readFileSync(entriesFile(), 'utf8').trim().split('\n').map((l) => edit(JSON.parse(l) as { wsSeq: number; entry: Record<string, unknown> }));
  fs.writeFileSync(entriesFile(), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
}

/** The payload file of write-1's recorded input. */
function write1Input(): string {
  for (const line of fs.readFileSync(entriesFile(), 'utf8').trim().split('\n')) {
    const { entry } = JSON.parse(line) as { entry: { runId: string; payloadRefs?: { kind: string; sha256: string }[] } };
    const ref = entry.runId === WRITE_1 ? entry.payloadRefs?.find((r) => r.kind === 'ActionInput') : undefined;
    if (ref) return path.join(dir, 'payloads', 'demo', ref.sha256);
  }
  throw new Error('write-1 has no recorded input in the fixture');
}

async function whatIf(): Promise<WhatIfReport> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['policy', 'what-if', '--policies', readingPolicies(), '--workspace', 'demo', '--evidence-dir', path.join(dir, 'evidence'),
    '--payload-dir', path.join(dir, 'payloads'), '--json'], { out: (t) => out.push(t), err: (t) => err.push(t), env: { ...DEV_KEYS } });
  assert.equal(code, 0, err.join('\n'));
  return JSON.parse(out.join('\n')) as WhatIfReport;
}

/** Why write-1 was not re-evaluated (code and details), or undefined when it was. */
function skippedWhy(r: WhatIfReport): { code: string; details?: Record<string, number> } | undefined {
  const found = Object.entries(r.notReEvaluable).find(([, o]) => o.examples.includes(WRITE_1));
  return found && { code: found[0], ...(found[1].details && { details: found[1].details }) };
}

describe('hostile: policy what-if', function () {
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-whatif-hostile-'));
    fs.cpSync(FIXTURE, dir, { recursive: true });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('untouched, write-1 is re-decided on its recorded input (the baseline the cases below break)', async function () {
    const r = await whatIf();
    assert.equal(skippedWhy(r), undefined);
    assert.deepEqual(r.rules.find((x) => x.rule === 'demo-echo-write')?.unchanged.examples, [WRITE_1]);
  });

  it('a payload reference naming a path outside the store is never read', async function () {
    // Would decide write-1 on this file's input if the hash were used as a path.
    fs.writeFileSync(path.join(dir, 'outside.json'), JSON.stringify({ message: 'hey' }));
    editLog((r) => {
      const refs = r.entry.payloadRefs as { kind: string; sha256: string }[] | undefined;
      if (r.entry.runId === WRITE_1 && refs) r.entry.payloadRefs = refs.map((p) => (p.kind === 'ActionInput' ? { ...p, sha256: '../../outside.json' } : p));
      return r;
    });
    assert.deepEqual(skippedWhy(await whatIf()), { code: 'InputUnreadable', details: { 'not a payload hash': 1 } });
  });

  it('a recorded input edited in the payload store is not used', async function () {
    fs.writeFileSync(write1Input(), JSON.stringify({ message: 'hey', extra: 'smuggled' }));
    assert.deepEqual(skippedWhy(await whatIf()), { code: 'InputUnreadable', details: { 'does not match its hash': 1 } });
  });

  it('a payload file bigger than any action input is not read whole', async function () {
    fs.writeFileSync(write1Input(), Buffer.alloc(2 * 1024 * 1024, 0x20));
    assert.deepEqual(skippedWhy(await whatIf()), { code: 'InputUnreadable', details: { 'larger than an action input can be': 1 } });
  });

  it('malformed entries: a request without its fields is counted as not re-evaluable, non-entries and payload refs that are not a list are skipped, every other run is still reported', async function () {
    editLog((r) => {
      if (r.entry.runId === 'demo:whatif-read-1' && r.entry.event === 'RunRequested') return { ...r, entry: { ...r.entry, data: 'garbage' } };
      if (r.entry.runId === 'demo:whatif-read-2' && Array.isArray(r.entry.payloadRefs)) return { ...r, entry: { ...r.entry, payloadRefs: 'x' } };
      return r;
    });
    fs.appendFileSync(entriesFile(), `${JSON.stringify({ wsSeq: 10_000, entry: null })}\n${JSON.stringify({ wsSeq: 10_001, entry: { runId: 7, event: 'RunRequested' } })}\n`);
    const r = await whatIf();
    // read-1's request is unreadable: counted, not decided; read-2 lost its input reference only.
    assert.equal(r.runs.total, 7);
    assert.equal(skippedWhy(r), undefined);
    assert.deepEqual(r.notReEvaluable.RequestUnreadable, { count: 1, examples: ['demo:whatif-read-1'] });
    const all = [...r.rules.flatMap((x) => [x.nowDenied, x.nowAllowed, x.tierUp, x.tierDown, x.unchanged].flatMap((o) => o.examples)), ...Object.values(r.notReEvaluable).flatMap((o) => o.examples)];
    assert.ok(all.includes('demo:whatif-read-2'), 'read-2 is still reported');
  });
});
