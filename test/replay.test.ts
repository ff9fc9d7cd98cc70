/**
 * Determinism: every recorded history of a released path replays against the current workflow bundle.
 * Context: a change to `governedRun` that alters the commands of an old path breaks runs in flight;
 * such a change must go behind `patched()`, and this suite is what notices.
 * Record again with `RECORD_HISTORIES=1 npm test` only when adding a path.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import { prebuiltBundle } from '../workers/bundle';
import { testDataConverter } from './support/shared';
import { HISTORY_DIR, RECORDED_PATHS, recordedWorkflowIds } from './support/histories';

describe('replay of recorded histories', function () {
  this.timeout(60_000);

  it('has a recorded history, and the workflow id it ran under, for every released path', function () {
    if (process.env.RECORD_HISTORIES === '1') this.skip();
    const missing = RECORDED_PATHS.filter((p) => !fs.existsSync(path.join(HISTORY_DIR, `${p}.json`)) || !recordedWorkflowIds()[p]);
    assert.deepEqual(missing, []);
  });

  it('replays each of them without a nondeterminism error', async function () {
    if (process.env.RECORD_HISTORIES === '1') this.skip();
    const ids = recordedWorkflowIds();
    const histories = RECORDED_PATHS.map((p) => ({
      workflowId: ids[p] ?? p,
      history: JSON.parse(fs.readFileSync(path.join(HISTORY_DIR, `${p}.json`), 'utf8')),
    }));
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of Worker.runReplayHistories({ workflowBundle: prebuiltBundle(), dataConverter: testDataConverter() }, histories)) {
      replayed++;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    assert.equal(replayed, RECORDED_PATHS.length);
    assert.deepEqual(failures, []);
  });

  it('detects a history that does not match the code', async function () {
    if (process.env.RECORD_HISTORIES === '1') this.skip();
    // Context: proves the replay check can fail. Drop the dispatch activity from a recorded Auto run.
    const history = JSON.parse(fs.readFileSync(path.join(HISTORY_DIR, 'auto-succeeded.json'), 'utf8'));
    history.events = history.events.filter((e: { eventType?: string }) => !/ACTIVITY_TASK/.test(String(e.eventType)));
    history.events.forEach((e: { eventId: string }, i: number) => (e.eventId = String(i + 1)));
    await assert.rejects(Worker.runReplayHistory({ workflowBundle: prebuiltBundle(), dataConverter: testDataConverter() }, history, 'tampered'), (e: Error) => e.name === 'DeterminismViolationError');
  });
});
