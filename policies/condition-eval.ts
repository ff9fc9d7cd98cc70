/**
 * Evaluation of compiled policy conditions, three-valued: the semantics are in the header of
 * policies/condition.ts. Pure and deterministic; workflow code runs it.
 */
import { type CompiledCondition, type CondValue, FORBIDDEN, errorText, fail, hasOwn, isPlainObject, isRecord, kindOf, limit } from './condition-base';

/**
 * Result of evaluation; `ops` is what was spent, at most the budget plus one. `value: 'unknown'`
 * means a comparison could not be decided (a missing or mistyped operand) and the rest of the
 * condition did not decide it either; `unknown` then names the comparisons and their operands.
 */
export type EvalResult =
  | { ok: true; value: boolean; ops: number }
  | { ok: true; value: 'unknown'; unknown: string[]; ops: number }
  | { ok: false; error: string; ops: number };

/** What one evaluation spends, and how it compares (see `twoValued` on `evaluateCondition`). */
interface Budget { ops: number; limit: number; twoValued: boolean }

const tick = (b: Budget) => ++b.ops > b.limit && fail(`budget of ${b.limit} ops exceeded`);

/**
 * The third truth value: the condition cannot be decided on this context (a field is missing or has
 * another type than the comparison needs). `why` says which operand and why, for the decision's reasons.
 */
class Unknown { constructor(readonly why: readonly string[]) {} }
/** At most this many explanations travel with an unknown result: reasons must stay short. */
const MAX_WHY = 3;
const unknownOf = (xs: readonly Unknown[]): Unknown => new Unknown([...new Set(xs.flatMap((u) => u.why))].slice(0, MAX_WHY));
type Truth = boolean | Unknown;
type Val = CondValue | Unknown;

function checked(v: unknown): CondValue {
  kindOf(v);
  return v as CondValue;
}

function truth(v: Val, node: unknown, op: string): Truth {
  const at = isRecord(node) && typeof node.at === 'number' ? node.at : '?';
  return typeof v === 'boolean' || v instanceof Unknown ? v : fail(`operand of '${op}' at ${at} is ${kindOf(v)}, not boolean`);
}

/** The value at `path`, or `missing` when some segment is absent (the language reads that as null). */
function lookup(ctx: unknown, path: unknown): { v: CondValue; missing: boolean } {
  if (!Array.isArray(path) || path.length === 0) fail('malformed condition: bad path');
  let cur = ctx;
  for (const seg of path as unknown[]) {
    if (typeof seg !== 'string' || FORBIDDEN.has(seg)) return fail('malformed condition: forbidden path segment');
    if (!isPlainObject(cur) || !hasOwn(cur, seg)) return { v: null, missing: true };
    cur = cur[seg];
  }
  return cur === undefined ? { v: null, missing: true } : { v: checked(cur), missing: false };
}

function equal(a: unknown, b: unknown, budget: Budget): boolean {
  tick(budget);
  const kind = kindOf(a);
  if (kind !== kindOf(b)) return false;
  if (kind === 'array') return (a as unknown[]).length === (b as unknown[]).length && (a as unknown[]).every((x, i) => equal(x, (b as unknown[])[i], budget));
  if (kind !== 'object') return a === b;
  const x = a as Record<string, unknown>, y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => hasOwn(y, k) && equal(x[k], y[k], budget));
}

/** One operand of a comparison, with its node so that a reason can name it. */
interface Operand { v: Val; node: Record<string, unknown>; ctx: unknown }

const article = (kind: string) => (kind === 'null' ? 'null' : `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}`);

/** How an operand reads in a reason: `action.input.amount is missing`, `... is a string`. */
function described(o: Operand): string {
  const n = o.node;
  const name = n.k === 'path' && Array.isArray(n.p) ? (n.p as string[]).join('.') : n.k === 'lit' ? 'the literal' : 'the sub-condition';
  if (o.v instanceof Unknown) return `${name} is unknown`;
  if (n.k === 'path' && lookup(o.ctx, n.p).missing) return `${name} is missing`;
  return `${name} is ${article(kindOf(o.v))}`;
}

/** Only the literal `null` asks about presence; a null read from a path is a missing (or null) field. */
const nullLiteral = (o: Operand) => o.node.k === 'lit' && o.v === null;
const absent = (o: Operand) => o.v === null && !nullLiteral(o);
/** The operand to name in a reason: an absent one, else one that fails `bad`, else a path rather than a literal. */
const culprit = (a: Operand, b: Operand, bad: (o: Operand) => boolean) =>
  [a, b].find(absent) ?? [a, b].find(bad) ?? (a.node.k === 'lit' ? b : a);

function unknownBecause(op: unknown, at: unknown, text: string): Unknown {
  return new Unknown([`'${String(op)}' at ${typeof at === 'number' ? at : '?'}: ${text}`]);
}

/** `x in arr`: unknown unless arr is an array and x can be looked for in it (present, and of a kind some item has). */
function member(op: unknown, at: unknown, x: Operand, arr: Operand, budget: Budget): Truth {
  if (!Array.isArray(arr.v)) return unknownBecause(op, at, `${described(arr)}, not an array`);
  if (absent(x)) return unknownBecause(op, at, described(x));
  const items = arr.v;
  if (items.some((e) => equal(x.v, e, budget))) return true;
  const kind = kindOf(x.v);
  return items.length === 0 || items.some((e) => kindOf(e) === kind) ? false : unknownBecause(op, at, `${described(x)} and no item of ${described(arr).replace(/ is .*$/, '')} is`);
}

const orderable = (o: Operand) => typeof o.v === 'number' || typeof o.v === 'string';

/**
 * The comparisons before three-valued logic: false where undecidable (`!=` true), so a run whose
 * history was recorded then replays to the same decision.
 */
function twoValuedBinary(op: unknown, a: CondValue, b: CondValue, budget: Budget): boolean {
  const ordered = (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');
  const [x, y] = [a as number, b as number];
  switch (op) {
    case '==': return equal(a, b, budget);
    case '!=': return !equal(a, b, budget);
    case '<': return ordered && x < y;
    case '<=': return ordered && x <= y;
    case '>': return ordered && x > y;
    case '>=': return ordered && x >= y;
    case 'in': return Array.isArray(b) && b.some((e) => equal(a, e, budget));
    case 'contains': return Array.isArray(a) ? a.some((e) => equal(e, b, budget)) : typeof a === 'string' && typeof b === 'string' && a.includes(b);
    default: return fail('malformed condition: unknown operator');
  }
}

function binary(n: Record<string, unknown>, a: Operand, b: Operand, budget: Budget): Truth {
  const { op, at } = n;
  if (a.v instanceof Unknown || b.v instanceof Unknown) return unknownOf([a.v, b.v].filter((v): v is Unknown => v instanceof Unknown));
  const [x, y] = [a.v, b.v];
  if (budget.twoValued) return twoValuedBinary(op, x, y, budget);
  switch (op) {
    case '==': case '!=': {
      // Same kinds, or a presence test against the literal null, are decided; else a field is missing or mistyped.
      if (kindOf(x) === kindOf(y) || nullLiteral(a) || nullLiteral(b)) return equal(x, y, budget) === (op === '==');
      const c = culprit(a, b, () => false);
      return unknownBecause(op, at, `${described(c)}, the other side ${article(kindOf(c === a ? y : x))}`);
    }
    case '<': case '<=': case '>': case '>=': {
      if (!orderable(a) || !orderable(b) || typeof x !== typeof y) {
        return unknownBecause(op, at, `${described(culprit(a, b, (o) => !orderable(o)))}; '${op}' needs two numbers or two strings`);
      }
      const [p, q] = [x as number, y as number];
      return op === '<' ? p < q : op === '<=' ? p <= q : op === '>' ? p > q : p >= q;
    }
    case 'in': return member(op, at, a, b, budget);
    case 'contains':
      if (Array.isArray(x)) return member(op, at, b, a, budget);
      if (typeof x !== 'string') return unknownBecause(op, at, `${described(a)}, not an array or a string`);
      return typeof y === 'string' ? x.includes(y) : unknownBecause(op, at, `${described(b)}, not a string`);
    default: return fail('malformed condition: unknown operator');
  }
}

/** Kleene: a decisive operand (false for and, true for or) wins over unknown; otherwise unknown wins over the rest. */
function junction(k: 'and' | 'or', xs: unknown, ctx: unknown, budget: Budget): Truth {
  if (!Array.isArray(xs) || xs.length === 0) fail(`malformed condition: empty '${k}'`);
  const decisive = k === 'or';
  const unknowns: Unknown[] = [];
  for (const x of xs as unknown[]) {
    const t = truth(evalNode(x, ctx, budget), x, decisive ? '||' : '&&');
    if (t === decisive) return decisive;
    if (t instanceof Unknown) unknowns.push(t);
  }
  return unknowns.length ? unknownOf(unknowns) : !decisive;
}

function operand(n: unknown, ctx: unknown, budget: Budget): Operand {
  const v = evalNode(n, ctx, budget);
  return { v, node: n as Record<string, unknown>, ctx };
}

function evalNode(n: unknown, ctx: unknown, budget: Budget): Val {
  tick(budget);
  if (!isRecord(n)) return fail('malformed condition: node is not an object');
  switch (n.k) {
    case 'lit': return checked(n.v);
    case 'path': return lookup(ctx, n.p).v;
    case 'not': {
      const t = truth(evalNode(n.x, ctx, budget), n.x, '!');
      return t instanceof Unknown ? t : !t;
    }
    case 'and': case 'or': return junction(n.k, n.xs, ctx, budget);
    case 'bin': return binary(n, operand(n.a, ctx, budget), operand(n.b, ctx, budget), budget);
    default: return fail('malformed condition: unknown node kind');
  }
}

/**
 * Evaluate a compiled condition against a context. Never throws. The value is `true`, `false` or
 * `'unknown'` (with `unknown`: why, at most three reasons); callers must treat unknown as "could be
 * either" and take the stricter reading. A budget overrun, a non-boolean operand of `&&`/`||`/`!` or
 * result, a value that is not JSON data, or a tree this module did not produce gives `ok: false`,
 * and callers fail closed.
 * @param opts.budget ops allowed: one per node visited and one per value compared. @default 1000
 * @param opts.twoValued the semantics before three-valued logic (never `'unknown'`), only for
 *   replaying histories recorded with them. @default false
 */
export function evaluateCondition(c: CompiledCondition, context: { [k: string]: CondValue }, opts?: { budget?: number; twoValued?: boolean }): EvalResult {
  const budget: Budget = { ops: 0, limit: 0, twoValued: opts?.twoValued === true };
  try {
    budget.limit = limit(opts?.budget, 1000, 'budget');
    if (!isRecord(c) || c.v !== 1) fail('malformed condition: not a compiled condition of version 1');
    const value = evalNode(c.root, context, budget);
    if (value instanceof Unknown) return { ok: true, value: 'unknown', unknown: [...value.why], ops: budget.ops };
    return typeof value === 'boolean' ? { ok: true, value, ops: budget.ops } : fail(`condition gave ${kindOf(value)}, not boolean`);
  } catch (e) {
    return { ok: false, error: errorText(e), ops: budget.ops };
  }
}

/** An ordered comparison (`< <= > >=`) in a compiled condition that reads at least one path. */
export interface OrderedComparison {
  /** As written, normalised: `action.input.amount > 1000`. */
  text: string;
  /** The paths it reads. */
  paths: string[];
  at: number;
}

/**
 * The ordered comparisons of a condition that read a path: where a missing or mistyped field makes
 * the condition unknown. For `portarium policy check`; a tree it did not produce gives [].
 */
export function orderedComparisons(c: CompiledCondition): OrderedComparison[] {
  const out: OrderedComparison[] = [];
  const show = (n: Record<string, unknown>) => (n.k === 'path' && Array.isArray(n.p) ? n.p.join('.') : n.k === 'lit' ? JSON.stringify(n.v) : '(...)');
  const visit = (n: unknown, depth: number): void => {
    if (!isRecord(n) || depth > 64) return;
    if (n.k === 'bin' && isRecord(n.a) && isRecord(n.b) && ['<', '<=', '>', '>='].includes(n.op as string)) {
      const paths = [n.a, n.b].filter((x) => x.k === 'path').map(show);
      if (paths.length) out.push({ text: `${show(n.a)} ${String(n.op)} ${show(n.b)}`, paths, at: typeof n.at === 'number' ? n.at : 0 });
    }
    for (const kid of [n.x, n.a, n.b, ...(Array.isArray(n.xs) ? n.xs : [])]) visit(kid, depth + 1);
  };
  visit(isRecord(c) ? c.root : undefined, 0);
  return out;
}
