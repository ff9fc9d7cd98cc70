/**
 * Event delivery benchmark (part of `npm run bench`): the `deliverRunEvents` activity (in a mock
 * activity context, no Temporal server) POSTing one run's events to a local subscriber on 127.0.0.1
 * through the guarded HTTP client: p50 and p99 per batch of one event, and events per second for
 * batches of 20, in structured and binary mode. Knob: BENCH_EVENTS (500). Last line: JSON.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createEventDeliveryActivities } from '../../activities/events/delivery';
import { FileSecretStore } from '../../activities/secrets/local-file';
import { loadPolicyDir } from '../../activities/policy/load';
import { PROJECT_ROOT } from '../../workers/config';
import { type RunEvent, buildRunEvent } from '../../workflows/events/run-events';
import { SubscriberFake } from '../fakes/subscriber-server';

const N = Number(process.env.BENCH_EVENTS ?? 500);
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

function events(runId: string, n: number): RunEvent[] {
  return Array.from({ length: n }, (_, i) =>
    buildRunEvent('succeeded', {
      runId, workspaceId: 'bench', correlationId: 'c', state: 'Succeeded', tier: 'Auto', actionHash: 'ab'.repeat(32),
      action: { runtime: 'echo', target: 'bench/x', operation: 'read' }, requestedBy: 'alice',
    }, { seq: i + 1, occurredAt: new Date(0).toISOString(), summary: 'done', hash: 'cd'.repeat(32) } as never));
}

async function main(): Promise<void> {
  const sub = await new SubscriberFake().start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-events-bench-'));
  fs.copyFileSync(path.join(PROJECT_ROOT, 'test', 'policies', 'defaults.json'), path.join(dir, 'defaults.json'));
  const results: Record<string, number> = {};
  for (const mode of ['structured', 'binary'] as const) {
    fs.writeFileSync(path.join(dir, 'bench.json'), JSON.stringify({
      schemaVersion: 1, kind: 'workspace', workspace: 'bench', rules: [],
      egress: { events: { hosts: [`127.0.0.1:${sub.port}`] } }, subscribers: [{ id: 'ap', url: sub.webhookUrl, mode }],
    }));
    const { deliverRunEvents } = createEventDeliveryActivities({ policies: loadPolicyDir(dir), secrets: new FileSecretStore(dir) });
    const env = new MockActivityEnvironment();
    const one: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await env.run(deliverRunEvents, { workspaceId: 'bench', runId: `r-${mode}-${i}`, events: events(`r-${mode}-${i}`, 1), finalAttempt: 1 });
      one.push(performance.now() - t0);
    }
    const t0 = performance.now();
    const batches = Math.max(1, Math.floor(N / 20));
    for (let i = 0; i < batches; i++) await env.run(deliverRunEvents, { workspaceId: 'bench', runId: `b-${mode}-${i}`, events: events(`b-${mode}-${i}`, 20), finalAttempt: 1 });
    const perSecond = (batches * 20) / ((performance.now() - t0) / 1000);
    results[`${mode}P50Ms`] = +percentile(one, 50).toFixed(2);
    results[`${mode}P99Ms`] = +percentile(one, 99).toFixed(2);
    results[`${mode}EventsPerSecond`] = Math.round(perSecond);
    console.log(`event delivery (${mode}): one event p50 ${results[`${mode}P50Ms`]} ms, p99 ${results[`${mode}P99Ms`]} ms; batches of 20: ${results[`${mode}EventsPerSecond`]} events/s`);
  }
  await sub.close();
  console.log(JSON.stringify({ bench: 'events', events: N, ...results }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
