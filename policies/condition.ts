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

import { type CompiledCondition, type CondValue, FORBIDDEN, errorText, fail, kindOf, limit } from './condition-base';
import { type EvalResult, evaluateCondition } from './condition-eval';

export type { CompiledCondition, CondValue } from './condition-base';
export { type EvalResult, type OrderedComparison, evaluateCondition, orderedComparisons } from './condition-eval';

/** Result of `compileCondition`; `error` names the problem and its character position. */
export type CompileResult = { ok: true; condition: CompiledCondition } | { ok: false; error: string };

type Op = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'contains';
type Node =
  | { k: 'lit'; at: number; v: CondValue }
  | { k: 'path'; at: number; p: string[] }
  | { k: 'not'; at: number; x: Node }
  | { k: 'and' | 'or'; at: number; xs: Node[] }
  | { k: 'bin'; at: number; op: Op; a: Node; b: Node };
interface Token { t: 'lit' | 'path' | 'op' | 'end'; at: number; text: string; op?: string; v?: CondValue; p?: string[] }

// A Map, not an object literal, so that a word such as `toString` finds nothing inherited.
const KEYWORDS = new Map<string, Pick<Token, 't' | 'op' | 'v'>>([
  ['and', { t: 'op', op: '&&' }], ['or', { t: 'op', op: '||' }], ['not', { t: 'op', op: '!' }], ['in', { t: 'op', op: 'in' }],
  ['contains', { t: 'op', op: 'contains' }], ['true', { t: 'lit', v: true }], ['false', { t: 'lit', v: false }], ['null', { t: 'lit', v: null }],
]);
/** One token at a fixed place: space, number, string, path or word, punctuation. A constant; linear on any input. */
const TOKEN = /\s+|(-?\d+(?:\.\d+)?)(?![\w.])|("(?:[^"\\]|\\["'\\])*"|'(?:[^'\\]|\\["'\\])*')|([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?![\w.])|(==(?!=)|!=(?!=)|<=|>=|&&|\|\||!(?!==)|[<>()[\],])/y;
/** Relational levels, loosest first; an operator does not chain with one of its own level. */
const LEVELS: readonly string[][] = [['==', '!=', '<', '<=', '>', '>='], ['in'], ['contains']];

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

/** Compile with the default limits, then evaluate. Never throws. */
export function checkCondition(source: string, context: { [k: string]: CondValue }, opts?: { budget?: number; twoValued?: boolean }): EvalResult {
  const compiled = compileCondition(source);
  return compiled.ok ? evaluateCondition(compiled.condition, context, opts) : { ok: false, error: compiled.error, ops: 0 };
}
