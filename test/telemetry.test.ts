/**
 * OpenTelemetry end to end on a real Temporal server: one trace from the client that starts a run,
 * through the workflow and its activities, to the outbound HTTP calls (the runtime's and the event
 * subscriber's), with portarium.* attributes on the dispatch span; and the worker process serving
 * Temporal's and Portarium's metrics on a Prometheus endpoint and logging JSON lines.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as otel from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Client } from '@temporalio/client';
import type { LogEntry } from '@temporalio/worker';
import type { RuntimeAdapter } from '../activities/runtimes/port';
import { PortariumClient } from '../workers/client';
import { ConfigError, loadConfig } from '../workers/config';
import { jsonLogLine } from '../workers/logging';
import { tracesRequested } from '../workers/telemetry';
import { HttpFake } from './fakes/http-fake';
import { SubscriberFake } from './fakes/subscriber-server';
import { freePort } from './support/dev-server';
import { TEST_POLICY_DIR, uid, waitForStatus, withWorker } from './support/harness';
import { DEV_KEYS, testEnv } from './support/shared';
import { type WorkerProcess, startWorkerProcess } from './support/worker-process';

/** A runtime that makes one outbound call through the guarded client, as every real adapter does. */
function probeRuntime(url: string): RuntimeAdapter {
  return {
    name: 'probe',
    async execute(call) {
      const res = await call.http.request({ method: 'POST', url: `${url}/act`, json: { target: call.request.target }, timeoutMs: 5_000 });
      return { output: { status: res.status } };
    },
  };
}

function policyDir(probePort: number, sub: SubscriberFake): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-otel-'));
  fs.copyFileSync(path.join(TEST_POLICY_DIR, 'defaults.json'), path.join(dir, 'defaults.json'));
  fs.writeFileSync(path.join(dir, 'test.json'), JSON.stringify({
    schemaVersion: 1, kind: 'workspace', workspace: 'test',
    rules: [{ id: 'probe-auto', match: { runtime: 'probe' }, tier: 'Auto' }],
    egress: { probe: { hosts: [`127.0.0.1:${probePort}`] }, events: { hosts: [`127.0.0.1:${sub.port}`] } },
    subscribers: [{ id: 'ap', url: sub.webhookUrl, events: ['succeeded'] }],
  }));
  return dir;
}

const parentOf = (s: ReadableSpan) => s.parentSpanId;

describe('telemetry', function () {
  before(() => {
    otel.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    otel.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  after(() => {
    otel.context.disable();
    otel.propagation.disable();
  });

  it('one trace runs from the client through the workflow and its activities to the runtime and the subscriber', async function () {
    const exporter = new InMemorySpanExporter();
    const processor = new SimpleSpanProcessor(exporter);
    const provider = new BasicTracerProvider();
    provider.addSpanProcessor(processor);
    const tracer = provider.getTracer('telemetry-test');
    const probe = await new HttpFake(() => ({ status: 200, body: { ok: true } })).start();
    const sub = await new SubscriberFake().start();
    try {
      const client = new Client({ connection: testEnv().client.connection, interceptors: PortariumClient.interceptors(tracer), dataConverter: PortariumClient.dataConverter(loadConfig({ ...DEV_KEYS })) });
      await withWorker({ connection: testEnv().nativeConnection, client, runtimes: [probeRuntime(probe.url)], policyDir: policyDir(probe.port, sub), tracing: { tracer, spanProcessor: processor } }, async (h) => {
        const run = await h.start('act', { action: { runtime: 'probe', target: 'svc/thing', operation: 'act', input: {} } });
        assert.equal((await run.result()).state, 'Succeeded');
        await waitForStatus(run, (s) => s.events?.pending === 0);
        // Workflow spans leave the sandbox through a sink after each workflow task.
        const deadline = Date.now() + 10_000;
        const named = (re: RegExp) => exporter.getFinishedSpans().filter((s) => re.test(s.name));
        while (named(/^RunActivity:deliverRunEvents/).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        const [start] = named(/^StartWorkflow:governedRun$/);
        const [runWf] = named(/^RunWorkflow:governedRun$/);
        const [startDispatch] = named(/^StartActivity:dispatchAction$/);
        const [runDispatch] = named(/^RunActivity:dispatchAction$/);
        const names = exporter.getFinishedSpans().map((s) => s.name).join(', ');
        assert.ok(start && runWf && startDispatch && runDispatch, `spans: ${names}`);
        const traceId = start.spanContext().traceId;
        // Status queries are traces of their own (a reader's, not the run's); everything else is the run's.
        for (const s of exporter.getFinishedSpans().filter((x) => !/Query/.test(x.name))) assert.equal(s.spanContext().traceId, traceId, `${s.name} is in the run's trace`);
        assert.equal(parentOf(runWf), start.spanContext().spanId, 'the workflow continues the client span');
        assert.equal(parentOf(startDispatch), runWf.spanContext().spanId);
        assert.equal(parentOf(runDispatch), startDispatch.spanContext().spanId);
        // The runtime received the trace: its parent is the dispatch activity's span.
        const [call] = probe.calls('/act');
        const [, tid, parent] = String(call.headers.traceparent).split('-');
        assert.equal(tid, traceId);
        assert.equal(parent, runDispatch.spanContext().spanId);
        assert.deepEqual(
          Object.fromEntries(Object.entries(runDispatch.attributes).filter(([k]) => k.startsWith('portarium.'))),
          { 'portarium.workspace': 'test', 'portarium.correlation_id': (await run.status()).correlationId, 'portarium.run_id': run.workflowId, 'portarium.tier': 'Auto', 'portarium.runtime': 'probe', 'portarium.decision': 'Allow' },
        );
        // The subscriber's event joins the same trace, through the delivery activity's span.
        const [event] = sub.events();
        const [runDelivery] = named(/^RunActivity:deliverRunEvents$/).filter((s) => s.spanContext().spanId === String(event.traceparent).split('-')[2]);
        assert.equal(String(event.traceparent).split('-')[1], traceId);
        assert.ok(runDelivery, 'the event names the delivery span as its parent');
      });
    } finally {
      await probe.close();
      await sub.close();
      await provider.shutdown();
    }
  });

  it('asks for traces only when OTEL_* names an exporter or an endpoint', function () {
    assert.equal(tracesRequested({}), false);
    assert.equal(tracesRequested({ OTEL_TRACES_EXPORTER: 'none' }), false);
    assert.equal(tracesRequested({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
    assert.equal(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true);
  });

  it('log lines are JSON with credentials masked, and a bad metrics address is a configuration error', function () {
    const entry = { level: 'WARN', message: 'call failed: Authorization: Bearer abcdef0123456789abcdef', timestampNanos: 1_764_000_000_000_000_000n, meta: { password: 'hunter2-secret', runtime: 'probe', err: new Error('boom') } } as unknown as LogEntry;
    const line = JSON.parse(jsonLogLine(entry));
    assert.equal(line.level, 'WARN');
    assert.equal(line.runtime, 'probe');
    assert.deepEqual(line.err, { name: 'Error', message: 'boom' });
    assert.match(line.time, /^2025-11-24T/);
    assert.ok(!JSON.stringify(line).includes('hunter2-secret'), JSON.stringify(line));
    assert.ok(!JSON.stringify(line).includes('abcdef0123456789abcdef'), JSON.stringify(line));
    assert.throws(() => loadConfig({ PORTARIUM_METRICS_ADDRESS: 'localhost' }), ConfigError);
    assert.throws(() => loadConfig({ PORTARIUM_METRICS_ADDRESS: '127.0.0.1:99999' }), ConfigError);
    assert.throws(() => loadConfig({ PORTARIUM_LOG_FORMAT: 'xml' }), ConfigError);
    assert.equal(loadConfig({ PORTARIUM_METRICS_ADDRESS: '127.0.0.1:9464' }).metricsAddress, '127.0.0.1:9464');
    assert.equal(loadConfig({}).logFormat, 'json');
  });

  describe('the worker process', function () {
    let worker: WorkerProcess | undefined;
    afterEach(() => worker?.child.kill('SIGTERM'));

    it('serves Temporal and Portarium metrics on the Prometheus endpoint, logs JSON lines, and runs with no OTEL_* set', async function () {
      this.timeout(60_000);
      const port = await freePort();
      const taskQueue = uid('tq-metrics');
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-metrics-'));
      worker = await startWorkerProcess({ PORTARIUM_TASK_QUEUE: taskQueue, PORTARIUM_POLICY_DIR: TEST_POLICY_DIR, PORTARIUM_DATA_DIR: dataDir, PORTARIUM_METRICS_ADDRESS: `127.0.0.1:${port}`, PORTARIUM_LOG_LEVEL: 'INFO' });
      const out = () => worker!.output();
      assert.match(out(), new RegExp(`metrics=http://127.0.0.1:${port}/metrics traces=off`));
      const portarium = new PortariumClient(testEnv().client, taskQueue);
      for (const operation of ['read', 'delete']) {
        const { run } = await portarium.startRun({ workspaceId: 'test', correlationId: uid('corr'), requestedBy: { id: 'alice', roles: ['dev'] }, action: { runtime: 'echo', target: 'test/m', operation, input: {} }, idempotencyKey: uid('key'), reason: 'metrics' });
        await run.result();
      }
      let metrics = '';
      const deadline = Date.now() + 15_000;
      while (!/portarium_runs\{[^}]*state="Denied"/.test(metrics) && Date.now() < deadline) {
        metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.match(metrics, /^temporal_\w+/m, 'Temporal worker metrics');
      assert.match(metrics, /portarium_runs\{[^}]*state="Succeeded"[^}]*tier="Auto"|portarium_runs\{[^}]*tier="Auto"[^}]*state="Succeeded"/, 'runs by state and tier');
      assert.match(metrics, /portarium_policy_denials/, 'policy denials');
      assert.match(metrics, /portarium_decision_to_dispatch/, 'decision-to-dispatch latency');
      const logLines = out().split('\n').filter((l) => l.trim() && !/^portarium worker pid=/.test(l));
      assert.ok(logLines.length > 0, 'the worker logged');
      for (const l of logLines) assert.doesNotThrow(() => JSON.parse(l), `not a JSON line: ${l}`);
    });
  });
});
