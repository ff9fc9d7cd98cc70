/**
 * Break-glass rules without a server: the ledger's sliding windows per principal and per workspace,
 * one use per claim id, and the `breakGlass` section of policy files (defaults, bounds, snapshot and hash).
 */
import * as assert from 'node:assert/strict';
import { loadPolicyDir, PolicyLoadError } from '../activities/policy/load';
import { BreakGlass } from '../policies/break-glass';
import { BreakGlassBook } from '../workflows/break-glass/book';
import type { BreakGlassClaim } from '../workflows/break-glass/types';
import { breakGlassPolicyDir } from './support/break-glass';
import { runDetails } from '../workflows/run/details';
import type { RunStatus } from '../workflows/types';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms);
const H = 3_600_000;
const claim = (id: string, principalId: string, perPrincipal = { count: 2, perMs: H }, perWorkspace = { count: 3, perMs: H }): BreakGlassClaim => ({
  claimId: `run-${id}/d`, runId: `run-${id}`, principalId, perPrincipal, perWorkspace,
});

describe('break-glass book and policy', function () {
  it('counts per principal and per workspace in sliding windows; a use stops counting when its window passes', function () {
    const book = new BreakGlassBook();
    assert.equal(book.claim(claim('1', 'ivan'), at(0)).granted, true);
    assert.deepEqual(book.claim(claim('2', 'ivan'), at(1000)).window, { principalUses: 2, workspaceUses: 2 });
    const third = book.claim(claim('3', 'ivan'), at(2000));
    assert.deepEqual([third.granted, third.limit], [false, 'perPrincipal']);
    assert.equal(book.claim(claim('4', 'judy'), at(3000)).granted, true);
    const full = book.claim(claim('5', 'kim'), at(4000));
    assert.deepEqual([full.granted, full.limit, full.window.workspaceUses], [false, 'perWorkspace', 3]);
    // An hour after the first use it no longer counts: ivan may use it once more.
    assert.equal(book.claim(claim('6', 'ivan'), at(H + 1)).granted, true);
    assert.equal(book.refused, 2);
  });

  it('a repeated claim id answers as the first time and never counts twice', function () {
    const book = new BreakGlassBook();
    const first = book.claim(claim('1', 'ivan'), at(0));
    const again = book.claim(claim('1', 'ivan'), at(10));
    assert.deepEqual(again, first);
    assert.equal(book.uses.length, 1);
    const refusedBook = new BreakGlassBook();
    refusedBook.claim(claim('a', 'ivan', { count: 1, perMs: H }), at(0));
    const no = refusedBook.claim(claim('b', 'ivan', { count: 1, perMs: H }), at(1));
    assert.deepEqual(refusedBook.claim(claim('b', 'ivan', { count: 1, perMs: H }), at(2)), no);
    assert.equal(refusedBook.refused, 1);
  });

  it('policy: absent means none; defaults fill reviewers, reviewWithin and rate limits; bad values are refused', function () {
    const parsed = BreakGlass.parse({ roles: ['oncall'] });
    assert.deepEqual([parsed.reviewers, parsed.reviewWithin, parsed.rateLimit.perPrincipal, parsed.rateLimit.perWorkspace], [1, '24h', { count: 1, per: '24h' }, { count: 10, per: '24h' }]);
    for (const bad of [{ roles: [] }, { roles: ['oncall'], reviewers: 0 }, { roles: ['oncall'], reviewWithin: 'soon' }, { roles: ['oncall'], rateLimit: { perPrincipal: { count: 0, per: '1h' } } }, { roles: ['oncall'], extra: 1 }]) {
      assert.equal(BreakGlass.safeParse(bad).success, false, JSON.stringify(bad));
    }
    const policies = loadPolicyDir(breakGlassPolicyDir({ 'with-bg': { reviewers: 2, reviewWithin: '90m' }, without: null }));
    assert.deepEqual(policies.snapshotFor('with-bg').breakGlass, { roles: ['oncall'], reviewers: 2, reviewWithinMs: 90 * 60_000, perPrincipal: { count: 2, perMs: H }, perWorkspace: { count: 1000, perMs: H } });
    assert.equal(policies.snapshotFor('without').breakGlass, undefined);
    // Inside the decision hash: who may release decides runs.
    const other = loadPolicyDir(breakGlassPolicyDir({ 'with-bg': { reviewers: 1, reviewWithin: '90m' } }));
    assert.notEqual(other.snapshotFor('with-bg').policyHash, policies.snapshotFor('with-bg').policyHash);
    assert.throws(() => loadPolicyDir(breakGlassPolicyDir({ bad: { reviewWithin: '0s' } })), PolicyLoadError);
  });

  it('the run page shows who released it and where the review stands, never the free-text reason', function () {
    const status = {
      schemaVersion: 1, workspaceId: 'bg', correlationId: 'c', state: 'Succeeded', tier: 'HumanApprove', actionHash: 'a'.repeat(64),
      action: { runtime: 'echo', target: 't', operation: 'write' }, requestedBy: 'alice', reasons: [], approvals: [], approvalsNeeded: 1,
      eligibleRoles: ['approver'], eligibleUsers: [], missingRoles: [], escalated: false, deadlines: {}, refusals: [], evidenceHead: 'h', evidenceCount: 5,
      breakGlass: {
        decisionId: 'd', by: 'ivan', roles: ['oncall'], reason: 'SECRET-ish incident text', at: '2026-01-01T00:00:00.000Z', releasedFrom: 'AwaitingApproval',
        window: { principalUses: 1, workspaceUses: 1 },
        review: { state: 'pending', needed: 2, dueAt: '2026-01-01T04:00:00.000Z', eligibleRoles: ['approver'], reviews: [{ reviewId: 'r', reviewerId: 'bob', verdict: 'confirm', rationale: 'ok', at: '2026-01-01T01:00:00.000Z' }] },
      },
    } as RunStatus;
    const text = runDetails('bg:k', status);
    assert.match(text, /\| break-glass \| by `ivan` at 2026-01-01T00:00:00.000Z; review \*\*pending\*\* \(1\/2 confirmed, due 2026-01-01T04:00:00.000Z\) \|/);
    assert.ok(!text.includes('SECRET-ish'));
  });
});
