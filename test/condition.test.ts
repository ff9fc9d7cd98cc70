/**
 * The policy condition language: values, precedence and strictness, compile errors that name a
 * position, fail-closed evaluation, the op budget, and a seeded property test over random input.
 */
import * as assert from 'node:assert/strict';
import { type CondValue, type CompiledCondition, checkCondition, compileCondition, evaluateCondition } from '../policies/condition';

type Context = { [k: string]: CondValue };

const ctx: Context = {
  workspace: 'acme',
  action: {
    runtime: 'echo',
    operation: 'write',
    target: 'crm/contacts',
    tools: ['search', 'send_email'],
    input: { amount: 1500, currency: 'EUR', note: "it's", tags: ['a', 'b'], nested: { deep: [1, { x: 2 }] } },
  },
  requester: { id: 'alice', roles: ['dev', 'finance'] },
};

function value(source: string, context: Context = ctx): boolean | 'unknown' {
  const r = checkCondition(source, context);
  assert.ok(r.ok, `${source}: ${r.ok ? '' : r.error}`);
  return r.value;
}

function compileError(source: string, opts?: { maxLength?: number; maxDepth?: number }): string {
  const r = compileCondition(source, opts);
  assert.equal(r.ok, false, `${source} should not compile`);
  return r.ok ? '' : r.error;
}

describe('policy conditions', function () {
  describe('values', function () {
    const table: [string, boolean | 'unknown'][] = [
      ["action.operation == 'write'", true],
      ['action.operation == "read"', false],
      ['action.input.amount > 1000', true],
      ['action.input.amount >= 1500', true],
      ['action.input.amount < 1500', false],
      ['action.input.amount == 1500.0', true],
      ['-5 < 0 && -1.5 <= -1.5', true],
      // Different kinds are unknown (three-valued), not false: see 'three-valued comparisons' below.
      ["1 == '1'", 'unknown'],
      ["1 != '1'", 'unknown'],
      ['true == 1 or null == false', 'unknown'],
      ['null == false', false],
      ["'abc' < 'abd' && 'b' > 'abc'", true],
      ["'10' < 9 or 9 > '10'", 'unknown'],
      ['null < 1 or null >= null', 'unknown'],
      ['action.missing == null', true],
      ['nowhere.at.all == null && !(nowhere.at.all != null)', true],
      ['action.input.amount.deeper == null', true],
      ['action.tools.length == null && action.toString == null && hasOwnProperty == null', true],
      ["'finance' in requester.roles", true],
      ["'ops' in requester.roles", false],
      ["'rit' in action.operation", 'unknown'],
      ['3 in [1, 2, 3] and not (4 in [1, 2, 3]) and not (1 in [])', true],
      ["[1, 'a'] in [[1, 'a'], 2]", true],
      ["action.tools contains 'search'", true],
      ["action.operation contains 'rit' && !(action.operation contains 'read')", true],
      ['action.operation contains 1 or action.input.amount contains 1', 'unknown'],
      ["[1, 'a', [true, null]] == [1, 'a', [true, null]]", true],
      ["requester.roles == ['dev', 'finance'] && requester.roles != ['finance', 'dev']", true],
      ['action.input == action.input && action.input.nested.deep == [1, 2]', false],
      ['workspace == "acme"', true],
      ['true || false && false', true],
      ['(true || false) && false', false],
      ['!false && false', false],
      ['not true or true', true],
      ["not action.operation == 'read'", true],
      ["action.operation == 'write' and not ('ops' in requester.roles)", true],
      ["false or 'finance' in requester.roles", true],
      ["'a' in action.input.tags == true", true],
      ['[1] contains 1 in [true]', true],
      ["'it\\'s' == action.input.note && \"it's\" == action.input.note", true],
      ["'a\\\\b' contains \"\\\\\" && 'a\\\\b' != 'ab'", true],
      ['false && action.operation', false],
      ['true || 1 == action.operation', true],
      ["(((action.operation == 'write')))", true],
    ];
    for (const [source, expected] of table) {
      it(`${source} -> ${expected}`, function () {
        assert.equal(value(source), expected);
      });
    }

    it('reads own properties of plain objects only', function () {
      const inherited = Object.create({ admin: true }) as Context;
      assert.equal(value('admin == null', inherited), true);
      assert.equal(value('admin == true', { admin: true }), true);
      assert.equal(value('a.b == 1', { a: JSON.parse('{"b": 1}') }), true);
    });

    it('compiles to plain JSON data', function () {
      const r = compileCondition("not (a.b == 1) || 'x' in [1, ['y']] && c contains 'z'");
      assert.ok(r.ok);
      assert.deepEqual(JSON.parse(JSON.stringify(r.condition)), r.condition);
    });

    it('spends one op per node and per value compared', function () {
      const typical = "action.operation == 'write' && action.input.amount > 1000 && 'finance' in requester.roles";
      assert.deepEqual(checkCondition(typical, ctx), { ok: true, value: true, ops: 13 });
      assert.deepEqual(checkCondition("action.operation == 'write'", ctx), { ok: true, value: true, ops: 4 });
    });
  });

  describe('three-valued comparisons: a missing or mistyped operand is unknown, never false', function () {
    // Context: `amount > 1000` was false for amount "250000", so a strict rule quietly did not match
    // and a looser one decided the run (issue 14, item 2).
    const table: [string, Context, boolean | 'unknown'][] = [
      ['x > 1000', { x: 250000 }, true],
      ['x > 1000', { x: '250000' }, 'unknown'],
      ['x > 1000', {}, 'unknown'],
      ['x > 1000', { x: null }, 'unknown'],
      ['x > 1000', { x: [250000] }, 'unknown'],
      ['x > 1000', { x: { v: 250000 } }, 'unknown'],
      ['x > 1000', { x: true }, 'unknown'],
      ["x >= 'm'", { x: 'z' }, true],
      ['x < y', { x: 1, y: 'b' }, 'unknown'],
      ['true < false', {}, 'unknown'],
      ["x == 'EUR'", { x: 'USD' }, false],
      ["x == 'EUR'", {}, 'unknown'],
      ["x != 'EUR'", {}, 'unknown'],
      ['x == 1000', { x: '1000' }, 'unknown'],
      ['x != 1000', { x: [1000] }, 'unknown'],
      ['x == [1, 2]', { x: [1, '2'] }, false],
      ['x == y', {}, true],
      ['x == null', {}, true],
      ['x == null', { x: null }, true],
      ['x == null', { x: 0 }, false],
      ['x != null', {}, false],
      ['null != x', { x: 'a' }, true],
      ["x in ['EUR', 'USD']", { x: 'EUR' }, true],
      ["x in ['EUR', 'USD']", { x: 'GBP' }, false],
      ["x in ['EUR', 'USD']", {}, 'unknown'],
      ["x in ['EUR', 'USD']", { x: 5 }, 'unknown'],
      ["x in ['EUR', 5]", { x: 7 }, false],
      ['x in []', { x: 5 }, false],
      ["'a' in x", { x: 'abc' }, 'unknown'],
      ["'a' in x", {}, 'unknown'],
      ['null in [1, null]', {}, true],
      ["x contains 'shell'", { x: ['search', 'shell'] }, true],
      ["x contains 'shell'", { x: ['search'] }, false],
      ["x contains 'shell'", {}, 'unknown'],
      ["x contains 'shell'", { x: { shell: true } }, 'unknown'],
      ['x contains y', { x: ['a'] }, 'unknown'],
      ["x contains 'el'", { x: 'shell' }, true],
      ['x contains 1', { x: 'shell' }, 'unknown'],
      ['(x > 1) == true', { x: 'a' }, 'unknown'],
      ['(x > 1) in [true]', { x: 2 }, true],
    ];
    for (const [source, context, expected] of table) {
      it(`${source} on ${JSON.stringify(context)} -> ${expected}`, function () {
        assert.equal(value(source, context), expected);
      });
    }

    it('and, or, not follow Kleene logic and short-circuit only on a decisive value', function () {
      // Each operand is true, false or unknown by context: t/f/u over x = 2, 0 or missing.
      const lit = { t: 'x > 1', f: 'x > 5', u: 'missing > 1' } as const;
      const k = { t: true, f: false, u: 'unknown' } as const;
      const and = (a: keyof typeof k, b: keyof typeof k) => (a === 'f' || b === 'f' ? 'f' : a === 'u' || b === 'u' ? 'u' : 't');
      const or = (a: keyof typeof k, b: keyof typeof k) => (a === 't' || b === 't' ? 't' : a === 'u' || b === 'u' ? 'u' : 'f');
      const vals = ['t', 'f', 'u'] as const;
      for (const a of vals) {
        assert.equal(value(`not (${lit[a]})`, { x: 2 }), k[a === 'u' ? 'u' : a === 't' ? 'f' : 't'], `not ${a}`);
        for (const b of vals) {
          assert.equal(value(`${lit[a]} && ${lit[b]}`, { x: 2 }), k[and(a, b)], `${a} and ${b}`);
          assert.equal(value(`${lit[a]} || ${lit[b]}`, { x: 2 }), k[or(a, b)], `${a} or ${b}`);
        }
      }
      assert.equal(value('not not (missing > 1)'), 'unknown');
      // false/true decide without looking further; unknown has to look at the next operand.
      assert.deepEqual(checkCondition('false && missing > 1', {}), { ok: true, value: false, ops: 2 });
      assert.deepEqual(checkCondition('true or missing > 1', {}), { ok: true, value: true, ops: 2 });
      assert.deepEqual(checkCondition('missing > 1 && false', {}), { ok: true, value: false, ops: 5 });
      // Still an error, not unknown: a non-boolean operand of && (the evaluation fails closed).
      assert.equal(checkCondition('missing > 1 && 5 == 5 && action', { action: 1 }).ok, false);
    });

    it('says which comparison was unknown and which operand was missing or mistyped', function () {
      const why = (source: string, context: Context) => {
        const r = checkCondition(source, context);
        assert.ok(r.ok && r.value === 'unknown', `${source} should be unknown`);
        return r.unknown;
      };
      const amount = (v: CondValue | undefined): Context => ({ action: { input: v === undefined ? {} : { amount: v } } });
      const gt = 'action.input.amount > 1000';
      assert.deepEqual(why(gt, amount('250000')), ["'>' at 20: action.input.amount is a string; '>' needs two numbers or two strings"]);
      assert.deepEqual(why(gt, amount(undefined)), ["'>' at 20: action.input.amount is missing; '>' needs two numbers or two strings"]);
      assert.deepEqual(why(gt, amount([250000])), ["'>' at 20: action.input.amount is an array; '>' needs two numbers or two strings"]);
      assert.deepEqual(why("c == 'EUR'", {}), ["'==' at 2: c is missing, the other side a string"]);
      assert.deepEqual(why("'EUR' == c", { c: 5 }), ["'==' at 6: c is a number, the other side a string"]);
      assert.deepEqual(why("c in ['EUR']", { c: 5 }), ["'in' at 2: c is a number and no item of the literal is"]);
      assert.deepEqual(why("'x' in c", { c: 'x' }), ["'in' at 4: c is a string, not an array"]);
      assert.deepEqual(why("c contains 'x'", {}), ["'contains' at 2: c is missing, not an array or a string"]);
      // Every unknown operand of `or` is named, at most three.
      assert.deepEqual(why('a > 1 or b > 1', {}), ["'>' at 2: a is missing; '>' needs two numbers or two strings", "'>' at 11: b is missing; '>' needs two numbers or two strings"]);
      assert.equal(why('a > 1 or b > 1 or c > 1 or d > 1', {}).length, 3);
    });
  });

  describe('two-valued mode, for replaying histories recorded before three-valued logic', function () {
    it('decides undecidable comparisons as the old evaluator did (false, and != true)', function () {
      const old: [string, boolean][] = [
        ["1 == '1'", false], ["1 != '1'", true], ["'10' < 9 or 9 > '10'", false], ['null < 1 or null >= null', false],
        ["'rit' in action.operation", false], ['action.operation contains 1 or action.input.amount contains 1', false],
        ['not (action.missing > 1)', true], ["action.missing != 'x'", true], ['action.input.amount > 1000', true],
      ];
      for (const [source, expected] of old) {
        const r = checkCondition(source, ctx, { twoValued: true });
        assert.ok(r.ok, source);
        assert.equal(r.value, expected, source);
      }
    });
  });

  describe('compile errors name the position and the problem', function () {
    const table: [string, RegExp][] = [
      ["(action.operation == 'write'", /expected '\)' to close '\(' at 0, found end of condition at 28/],
      ["action.operation == 'write')", /unexpected token '\)' at 27/],
      ['(a == 1 && b))', /unexpected token '\)' at 13/],
      ['()', /unexpected token '\)' at 1/],
      ['a = 1', /unknown operator '=' at 2/],
      ['a === 1', /unknown operator '===' at 2/],
      ['a !== 1', /unknown operator '!==' at 2/],
      ['a + 1 > 2', /unknown operator '\+' at 2/],
      ['a & b', /unknown operator '&' at 2/],
      ['a @ b', /unexpected character '@' at 2/],
      ['action.__proto__.x == 1', /path segment '__proto__' is not allowed at 7/],
      ['constructor == null', /path segment 'constructor' is not allowed at 0/],
      ['a.b.prototype == null', /path segment 'prototype' is not allowed at 4/],
      ['1 < x < 3', /chained '<' at 6: use parentheses/],
      ['a in b in c', /chained 'in' at 7/],
      ["'abc == 1", /unterminated string.* at 0/],
      ["'a\\n' == 1", /an escape other than .* at 0/],
      ['1. == 1', /malformed number at 0/],
      ['1e5 == 1', /malformed number at 0/],
      ['a. == 1', /malformed path at 0/],
      ['true.x == 1', /keyword 'true' cannot start a path at 0/],
      ['x in [1, a]', /array items must be literals: unexpected token 'a' at 9/],
      ['x in [1, 2', /unexpected end of condition at 10/],
      ['x in [1 2]', /unexpected token '2' at 8/],
      ["'x' && true", /operand of '&&' at 0 must be a boolean, not string/],
      ['not 1', /operand of '!' at 4 must be a boolean, not number/],
      ['1', /condition at 0 must be a boolean, not number/],
      ['', /unexpected end of condition at 0/],
      ['a ==', /unexpected end of condition at 4/],
      ['a == == b', /unexpected token '==' at 5/],
    ];
    for (const [source, expected] of table) {
      it(`${JSON.stringify(source)}: ${expected.source}`, function () {
        assert.match(compileError(source), expected);
      });
    }

    it('refuses a condition that is too long', function () {
      const long = Array.from({ length: 300 }, () => 'a == 1').join(' || ');
      assert.match(compileError(long), /condition too long at 2000: \d+ characters, limit 2000/);
      assert.match(compileError('a == 1', { maxLength: 5 }), /too long at 5/);
    });

    it('refuses a condition that is nested too deep', function () {
      assert.match(compileError(`${'('.repeat(33)}true${')'.repeat(33)}`), /nesting deeper than 32 at 32/);
      assert.match(compileError(`${'not '.repeat(33)}true`), /nesting deeper than 32 at 128/);
      assert.match(compileError(`x in ${'['.repeat(33)}${']'.repeat(33)}`), /nesting deeper than 32 at 37/);
      assert.match(compileError('((true))', { maxDepth: 1 }), /nesting deeper than 1 at 1/);
      assert.equal(compileCondition(`${'('.repeat(32)}true${')'.repeat(32)}`).ok, true);
    });

    it('refuses bad options', function () {
      assert.match(compileError('true', { maxDepth: -1 }), /maxDepth must be a non-negative integer/);
      assert.deepEqual(checkCondition('true', {}, { budget: 1.5 }), { ok: false, error: 'option budget must be a non-negative integer', ops: 0 });
    });
  });

  describe('evaluation fails closed', function () {
    function failure(source: string, context: Context = ctx, budget?: number): { ok: false; error: string; ops: number } {
      const r = checkCondition(source, context, { budget });
      assert.ok(!r.ok, `${source} should fail`);
      return r;
    }

    it('refuses non-boolean operands of && || ! and a non-boolean result', function () {
      assert.match(failure('action.operation && true').error, /operand of '&&' at 0 is string, not boolean/);
      assert.match(failure('false || action.input.amount').error, /operand of '\|\|' at 9 is number, not boolean/);
      assert.match(failure('not action.missing').error, /operand of '!' at 4 is null, not boolean/);
      assert.match(failure('action.input').error, /condition gave object, not boolean/);
      assert.match(failure('action.missing').error, /condition gave null, not boolean/);
    });

    it('stops when the budget is spent', function () {
      const chain = Array.from({ length: 20 }, () => 'false').join(' or ');
      assert.deepEqual(failure(chain, ctx, 10), { ok: false, error: 'budget of 10 ops exceeded', ops: 11 });
      const big = `5 in [${Array.from({ length: 100 }, (_, i) => i + 10).join(', ')}]`;
      assert.match(failure(big, ctx, 10).error, /budget of 10 ops exceeded/);
      assert.match(failure('action.input == action.input', ctx, 8).error, /budget of 8 ops exceeded/);
      assert.equal(checkCondition(big, ctx).ok, true);
      // Short-circuit: the rest of the chain is never visited.
      assert.deepEqual(checkCondition(`true or ${chain}`, ctx, { budget: 10 }), { ok: true, value: true, ops: 2 });
      assert.match(failure('true', ctx, 0).error, /budget of 0 ops exceeded/);
    });

    it('refuses context values that are not JSON data', function () {
      const odd = [new Date(0), () => 1, Number.NaN, Number.POSITIVE_INFINITY, new Map(), Symbol('s'), 1n] as unknown[];
      for (const v of odd) {
        assert.match(failure('x == 1', { x: v as CondValue }).error, /unsupported value/);
      }
      assert.match(failure('x == [1]', { x: [undefined] as unknown as CondValue }).error, /unsupported value of type undefined/);
      assert.equal(value('x == null', { x: undefined as unknown as CondValue }), true);
    });

    it('refuses a compiled condition it did not produce', function () {
      const good = compileCondition('a == 1');
      assert.ok(good.ok);
      const tampered: unknown[] = [
        null, 'x', {}, { v: 2, root: (good.condition as { root: unknown }).root }, { v: 1 }, { v: 1, root: { k: 'eval' } },
        { v: 1, root: { k: 'bin', op: '~', a: { k: 'lit', v: 1 }, b: { k: 'lit', v: 1 } } },
        { v: 1, root: { k: 'or', xs: [] } }, { v: 1, root: { k: 'or', xs: 'true' } }, { v: 1, root: { k: 'not', x: { k: 'lit', v: 'x' } } },
        JSON.parse('{"v":1,"root":{"k":"bin","op":"==","a":{"k":"path","p":["__proto__"]},"b":{"k":"lit","v":null}}}'),
        { v: 1, root: { k: 'bin', op: '==', a: { k: 'path', p: [] }, b: { k: 'lit', v: null } } },
        { v: 1, root: { k: 'bin', op: '==', a: { k: 'lit' }, b: { k: 'lit', v: null } } },
      ];
      for (const c of tampered) {
        const r = evaluateCondition(c as CompiledCondition, { a: 1 });
        assert.equal(r.ok, false, JSON.stringify(c));
      }
    });
  });

  describe('property: random input never throws and evaluates deterministically', function () {
    // Context: the evaluator runs inside workflow code, where a throw or a non-deterministic answer
    // would fail the workflow task or break replay.
    function mulberry32(seed: number): () => number {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    const rand = mulberry32(0xc0ffee);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const KEYS = ['action', 'requester', 'input', 'amount', 'operation', 'roles', 'tools', 'x', 'y'];
    const PATHS = ['action.operation', 'action.input.amount', 'requester.roles', 'action.tools', 'x', 'x.y', 'missing.path', 'action'];
    const LITS = ['true', 'false', 'null', '0', '1', '-2.5', '1000', "'write'", '"finance"', "'a\\'b'", '[]', "[1, 'write']", "['finance', 'dev']"];
    const SOUP = [...PATHS, ...LITS, '==', '!=', '<', '<=', '>', '>=', 'in', 'contains', '&&', '||', 'and', 'or', '!', 'not', '(', ')', '[', ']', ',',
      '=', '===', '+', '-', '__proto__', 'constructor', "'open", '1.', 'a.', '\\', '@', '.', 'true.x', '9'.repeat(400)];

    function expr(depth: number): string {
      const r = rand();
      if (depth <= 0 || r < 0.25) return pick(rand() < 0.5 ? PATHS : LITS);
      const side = () => (rand() < 0.7 ? pick(rand() < 0.5 ? PATHS : LITS) : `(${expr(depth - 1)})`);
      if (r < 0.5) return `${side()} ${pick(['==', '!=', '<', '<=', '>', '>=', 'in', 'contains'])} ${side()}`;
      if (r < 0.75) return `${expr(depth - 1)} ${pick(['&&', '||', 'and', 'or'])} ${expr(depth - 1)}`;
      return rand() < 0.5 ? `${pick(['!', 'not '])}${expr(depth - 1)}` : `(${expr(depth - 1)})`;
    }
    const soup = () => Array.from({ length: 1 + Math.floor(rand() * 12) }, () => pick(SOUP)).join(rand() < 0.8 ? ' ' : '');

    function json(depth: number): CondValue {
      const r = rand();
      if (depth <= 0 || r < 0.4) return pick<CondValue>([null, true, false, 0, 1, 1000, 1500, -2.5, 'write', 'finance', 'dev', '']);
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => json(depth - 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick(KEYS), json(depth - 1)]));
    }
    const context = (): Context => Object.fromEntries(KEYS.filter(() => rand() < 0.6).map((k) => [k, json(3)]));

    /** Replace one field somewhere in the tree with junk. */
    function tamper(c: CompiledCondition): unknown {
      const copy = JSON.parse(JSON.stringify(c));
      let node = copy.root;
      for (let n = Math.floor(rand() * 4); n > 0 && node && typeof node === 'object'; n--) {
        const kids = Object.values(node).filter((v) => v && typeof v === 'object');
        if (kids.length === 0) break;
        node = pick(kids);
      }
      if (node && typeof node === 'object') node[pick(['k', 'op', 'v', 'p', 'x', 'xs', 'a', 'b', 'at'])] = pick<unknown>([null, 'or', 'bin', 'lit', '==', 7, [], {}, [{}], ['__proto__']]);
      return copy;
    }

    it('4000 random conditions and contexts', function () {
      const seen = { compiled: 0, compileErrors: 0, trues: 0, falses: 0, unknowns: 0, evalErrors: 0, budgetErrors: 0 };
      for (let n = 0; n < 4000; n++) {
        const source = rand() < 0.6 ? expr(1 + Math.floor(rand() * 5)) : soup();
        const data = context();
        const budget = pick([undefined, 0, 3, 10, 50, 1000]);
        const limit = budget ?? 1000;
        const compiled = compileCondition(source);
        assert.deepEqual(compileCondition(source), compiled);
        if (!compiled.ok) {
          seen.compileErrors++;
          assert.match(compiled.error, / at \d+/, source);
          assert.deepEqual(checkCondition(source, data, { budget }), { ok: false, error: compiled.error, ops: 0 });
          continue;
        }
        seen.compiled++;
        const first = evaluateCondition(compiled.condition, data, { budget });
        assert.deepEqual(evaluateCondition(compiled.condition, data, { budget }), first, source);
        const stored = JSON.parse(JSON.stringify(compiled.condition)) as CompiledCondition;
        assert.deepEqual(evaluateCondition(stored, JSON.parse(JSON.stringify(data)), { budget }), first, source);
        assert.deepEqual(checkCondition(source, data, { budget }), first, source);
        assert.ok(Number.isInteger(first.ops) && first.ops >= 0 && first.ops <= limit + 1, `${source}: ops ${first.ops}`);
        if (first.ok && first.value === 'unknown') {
          seen.unknowns++;
          assert.ok(first.unknown.length >= 1 && first.unknown.length <= 3 && first.unknown.every((w) => /^'[^']+' at \d+: /.test(w)), `${source}: ${first.unknown}`);
        } else if (first.ok) {
          assert.equal(typeof first.value, 'boolean');
          if (first.value) seen.trues++;
          else seen.falses++;
        } else {
          assert.equal(typeof first.error, 'string');
          if (/budget/.test(first.error)) seen.budgetErrors++;
          else seen.evalErrors++;
        }
        const junk = evaluateCondition(tamper(compiled.condition) as CompiledCondition, data, { budget });
        assert.ok(junk.ops <= limit + 1 && (junk.ok ? typeof junk.value === 'boolean' || junk.value === 'unknown' : typeof junk.error === 'string'));
      }
      // The generator must reach every outcome, or the property says little.
      for (const [outcome, count] of Object.entries(seen)) assert.ok(count >= 50, `${outcome}: only ${count} of 4000`);
    });
  });
});
