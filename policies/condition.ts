/**
 * The condition language of policy rules (`when`). Workflow code imports it, so it is pure and
 * deterministic: no eval, no regex built from input, no Node built-ins, no Temporal, no zod.
 *
 *   or := and (('||' | 'or') and)*               and := not (('&&' | 'and') not)*
 *   not := ('!' | 'not') not | cmp               so `not a == b` is `not (a == b)`
 *   cmp := in (('==' | '!=' | '<' | '<=' | '>' | '>=') in)?     in := has ('in' has)?
 *   has := primary ('contains' primary)?         primary := literal | path | '(' or ')'
 *   literal := -?digits(.digits)? | 'str' | "str" | true | false | null | '[' literal, ... ']'
 *   path := segment ('.' segment)*               segment := [A-Za-z_][A-Za-z0-9_]*
 *
 * Strings escape only \', \" and \\. Chosen so that a governance rule cannot pass by accident:
 * - A missing path reads as null. Only own properties of plain objects are read (`tools.length` is
 *   null), and the segments `__proto__`, `constructor` and `prototype` are refused.
 * - Three-valued: a comparison that cannot be decided on this context is *unknown*, never false, so a
 *   missing or mistyped field cannot make a rule quietly not match (the evaluator then takes the
 *   stricter reading). A null read from a path is a missing field; only the literal `null` is a value.
 *   `< <= > >=`: two numbers or two strings (UTF-16 order) compare, anything else is unknown.
 *   `==`/`!=`: deep equality without coercion when both sides have the same kind (null, boolean,
 *   number, string, array, object) or one side is the literal `null` (`x == null`: x is missing or
 *   null); different kinds are unknown (`1 == '1'`, `x == 'EUR'` with x missing). `===` is refused.
 *   `x in arr` / `arr contains x`: unknown unless arr is an array and x is present; true if an item
 *   equals x, false if none does and the array is empty or has an item of x's kind, else unknown.
 *   `s contains t`: two strings; anything else is unknown. An unknown operand makes a comparison unknown.
 * - `&&`, `||`, `!` are Kleene: `false && unknown` is false, `true || unknown` true, `!unknown` unknown.
 * - Comparisons do not chain: `1 < x < 3` is a compile error, not `(1 < x) < 3`.
 * - `&&`, `||`, `!` and the result need booleans (or unknown), else the evaluation fails (callers
 *   fail closed): a bare missing path used as a boolean is an error, not unknown.
 *   `&&` and `||` short-circuit: an operand that is not reached is not checked.
 * - Each node visited and each value compared costs one op; going over the budget fails.
 * Positions in messages are 0-based character offsets into the source.
 */

/** A value of the evaluation context: JSON data. */
export type CondValue = null | boolean | number | string | CondValue[] | { [k: string]: CondValue };

/**
 * A compiled condition: plain JSON data, so it may be stored in workflow history. Treat `root` as
 * opaque; `evaluateCondition` checks its shape again and fails on anything it did not produce.
 */
export interface CompiledCondition {
  /** Format version of the tree. */
  readonly v: 1;
  readonly root: unknown;
}

/** Result of `compileCondition`; `error` names the problem and its character position. */
export type CompileResult = { ok: true; condition: CompiledCondition } | { ok: false; error: string };

/**
 * Result of evaluation; `ops` is what was spent, at most the budget plus one. `value: 'unknown'`
 * means a comparison could not be decided (a missing or mistyped operand) and the rest of the
 * condition did not decide it either; `unknown` then names the comparisons and their operands.
 */
export type EvalResult =
  | { ok: true; value: boolean; ops: number }
  | { ok: true; value: 'unknown'; unknown: string[]; ops: number }
  | { ok: false; error: string; ops: number };

type Op = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'contains';
type Node =
  | { k: 'lit'; at: number; v: CondValue }
  | { k: 'path'; at: number; p: string[] }
  | { k: 'not'; at: number; x: Node }
  | { k: 'and' | 'or'; at: number; xs: Node[] }
  | { k: 'bin'; at: number; op: Op; a: Node; b: Node };
interface Token { t: 'lit' | 'path' | 'op' | 'end'; at: number; text: string; op?: string; v?: CondValue; p?: string[] }
interface Budget { ops: number; limit: number }

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
// A Map, not an object literal, so that a word such as `toString` finds nothing inherited.
const KEYWORDS = new Map<string, Pick<Token, 't' | 'op' | 'v'>>([
  ['and', { t: 'op', op: '&&' }], ['or', { t: 'op', op: '||' }], ['not', { t: 'op', op: '!' }], ['in', { t: 'op', op: 'in' }],
  ['contains', { t: 'op', op: 'contains' }], ['true', { t: 'lit', v: true }], ['false', { t: 'lit', v: false }], ['null', { t: 'lit', v: null }],
]);
/** One token at a fixed place: space, number, string, path or word, punctuation. A constant; linear on any input. */
const TOKEN = /\s+|(-?\d+(?:\.\d+)?)(?![\w.])|("(?:[^"\\]|\\["'\\])*"|'(?:[^'\\]|\\["'\\])*')|([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?![\w.])|(==(?!=)|!=(?!=)|<=|>=|&&|\|\||!(?!==)|[<>()[\],])/y;
/** Relational levels, loosest first; an operator does not chain with one of its own level. */
const LEVELS: readonly string[][] = [['==', '!=', '<', '<=', '>', '>='], ['in'], ['contains']];

/** Carries a compile or evaluation error to the one catch; not an Error, so no stack is captured. */
class Fail { constructor(readonly message: string) {} }
const fail = (message: string): never => { throw new Fail(message); };
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
// A tag check rather than a prototype check: context objects may come from another realm (the sandbox).
const isPlainObject = (x: unknown): x is Record<string, unknown> => isRecord(x) && Object.prototype.toString.call(x) === '[object Object]';
const errorText = (e: unknown) => (e instanceof Fail ? e.message : `internal error: ${e instanceof Error ? e.name : typeof e}`);
const shown = (t: Token) => (t.t === 'end' ? 'end of condition' : `token '${t.text}'`);
const unexpected = (t: Token): never => fail(`unexpected ${shown(t)} at ${t.at}`);

function lex(src: string): Token[] {
  const out: Token[] = [];
  const re = new RegExp(TOKEN); // a copy: `lastIndex` is state
  for (let at = 0; at < src.length; at = re.lastIndex) {
    re.lastIndex = at;
    const m = re.exec(src);
    if (!m) return badToken(src, at);
    const [, num, str, path, op] = m;
    if (num !== undefined) out.push({ t: 'lit', at, text: num, v: Number.isFinite(+num) ? +num : fail(`number out of range at ${at}`) });
    else if (str !== undefined) out.push({ t: 'lit', at, text: str, v: str.slice(1, -1).replace(/\\(.)/g, '$1') });
    else if (path !== undefined) out.push(word(path, at));
    else if (op !== undefined) out.push({ t: 'op', at, text: op, op });
  }
  out.push({ t: 'end', at: src.length, text: '' });
  return out;
}

function word(text: string, at: number): Token {
  const p = text.split('.');
  const keyword = KEYWORDS.get(text);
  if (keyword) return { t: keyword.t, at, text, op: keyword.op, v: keyword.v }; // field by field: a spread here cost ~2 us a keyword in V8
  if (KEYWORDS.has(p[0])) fail(`keyword '${p[0]}' cannot start a path at ${at}`);
  const bad = p.findIndex((seg) => FORBIDDEN.has(seg));
  if (bad >= 0) fail(`path segment '${p[bad]}' is not allowed at ${at + p.slice(0, bad).join('.').length + (bad && 1)}`);
  return { t: 'path', at, text, p };
}

/** Why nothing matched at `at`, as precisely as is cheap. */
function badToken(src: string, at: number): never {
  const c = src.charAt(at);
  const op = /^[=!<>&|+\-*/%^~]+/.exec(src.slice(at, at + 8))?.[0];
  if (c === '"' || c === "'") fail(`unterminated string, or an escape other than \\' \\" \\\\, at ${at}`);
  if (/^-?\d/.test(src.slice(at, at + 2))) fail(`malformed number at ${at}`);
  if (/^[A-Za-z_]/.test(c)) fail(`malformed path at ${at}: a '.' must be followed by a segment`);
  return fail(op ? `unknown operator '${op}' at ${at}${op === '===' || op === '!==' ? ` (${op.slice(0, 2)} is already strict)` : ''}` : `unexpected character '${c}' at ${at}`);
}

/** A literal that is not a boolean can never be an operand of `&&`, `||`, `!`, nor the whole condition. */
function boolOperand(n: Node, what: string): Node {
  return n.k === 'lit' && typeof n.v !== 'boolean' ? fail(`${what} at ${n.at} must be a boolean, not ${kindOf(n.v)}`) : n;
}

/** Recursive descent over the grammar in the header; `depth` bounds the recursion. */
function parse(toks: Token[], maxDepth: number): Node {
  let i = 0;
  let depth = 0;
  const next = () => (toks[i].t === 'end' ? toks[i] : toks[i++]);
  const take = (ops: readonly string[]) => (toks[i].t === 'op' && ops.includes(toks[i].op!) ? next() : undefined);
  function nest<T>(at: number, f: () => T): T {
    if (++depth > maxDepth) fail(`nesting deeper than ${maxDepth} at ${at}`);
    const r = f();
    depth--;
    return r;
  }
  function junction(op: string, k: 'and' | 'or', sub: () => Node): Node {
    const xs = [sub()];
    while (take([op])) xs.push(sub());
    return xs.length === 1 ? xs[0] : { k, at: xs[0].at, xs: xs.map((x) => boolOperand(x, `operand of '${op}'`)) };
  }
  const or = (): Node => junction('||', 'or', and);
  const and = (): Node => junction('&&', 'and', not);
  function not(): Node {
    const t = take(['!']);
    return t ? nest(t.at, () => ({ k: 'not', at: t.at, x: boolOperand(not(), "operand of '!'") })) : relation(0);
  }
  function relation(level: number): Node {
    const sub = () => (level + 1 < LEVELS.length ? relation(level + 1) : primary());
    const a = sub();
    const t = take(LEVELS[level]);
    if (!t) return a;
    const b = sub();
    const again = take(LEVELS[level]);
    return again ? fail(`chained '${again.text}' at ${again.at}: use parentheses`) : { k: 'bin', at: t.at, op: t.op as Op, a, b };
  }
  function primary(): Node {
    const t = next();
    if (t.t === 'lit') return { k: 'lit', at: t.at, v: t.v as CondValue };
    if (t.t === 'path') return { k: 'path', at: t.at, p: t.p! };
    if (t.op === '[') return { k: 'lit', at: t.at, v: array(t) };
    if (t.op !== '(') return unexpected(t);
    return nest(t.at, () => {
      const inner = or();
      const close = next();
      return close.op === ')' ? inner : fail(`expected ')' to close '(' at ${t.at}, found ${shown(close)} at ${close.at}`);
    });
  }
  function array(open: Token): CondValue[] {
    return nest(open.at, () => {
      const items: CondValue[] = [];
      for (let first = true; !take([']']); first = false) {
        if (!first && !take([','])) unexpected(toks[i]);
        const t = next();
        items.push(t.t === 'lit' ? (t.v as CondValue) : t.op === '[' ? array(t) : fail(`array items must be literals: unexpected ${shown(t)} at ${t.at}`));
      }
      return items;
    });
  }
  const root = boolOperand(or(), 'condition');
  return toks[i].t === 'end' ? root : unexpected(toks[i]);
}

function limit(value: number | undefined, fallback: number, name: string): number {
  return value === undefined ? fallback : Number.isSafeInteger(value) && value >= 0 ? value : fail(`option ${name} must be a non-negative integer`);
}

/**
 * Compile a condition. Never throws.
 * @param opts.maxLength longest source accepted, in characters. @default 2000
 * @param opts.maxDepth deepest nesting of parentheses, `!` and array literals. @default 32
 */
export function compileCondition(source: string, opts?: { maxLength?: number; maxDepth?: number }): CompileResult {
  try {
    const maxLength = limit(opts?.maxLength, 2000, 'maxLength');
    const maxDepth = limit(opts?.maxDepth, 32, 'maxDepth');
    if (typeof source !== 'string') fail('condition must be a string');
    if (source.length > maxLength) fail(`condition too long at ${maxLength}: ${source.length} characters, limit ${maxLength}`);
    return { ok: true, condition: { v: 1, root: parse(lex(source), maxDepth) } };
  } catch (e) {
    return { ok: false, error: errorText(e) };
  }
}

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

/** Fails on anything but JSON data, so a Date, a function, NaN or undefined cannot be compared. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (isPlainObject(v)) return 'object';
  const t = typeof v;
  return t === 'boolean' || t === 'string' || (t === 'number' && Number.isFinite(v)) ? t : fail(`unsupported value of type ${t}`);
}

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

function binary(n: Record<string, unknown>, a: Operand, b: Operand, budget: Budget): Truth {
  const { op, at } = n;
  if (a.v instanceof Unknown || b.v instanceof Unknown) return unknownOf([a.v, b.v].filter((v): v is Unknown => v instanceof Unknown));
  const [x, y] = [a.v, b.v];
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
 */
export function evaluateCondition(c: CompiledCondition, context: { [k: string]: CondValue }, opts?: { budget?: number }): EvalResult {
  const budget: Budget = { ops: 0, limit: 0 };
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

/** Compile with the default limits, then evaluate. Never throws. */
export function checkCondition(source: string, context: { [k: string]: CondValue }, opts?: { budget?: number }): EvalResult {
  const compiled = compileCondition(source);
  return compiled.ok ? evaluateCondition(compiled.condition, context, opts) : { ok: false, error: compiled.error, ops: 0 };
}
