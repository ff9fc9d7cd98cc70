/**
 * What the condition compiler (policies/condition.ts) and evaluator (policies/condition-eval.ts)
 * share: the value and tree types, and the one error channel. Pure, like both.
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

/** Path segments a condition may not name, at compile time and again at evaluation. */
export const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Carries a compile or evaluation error to the one catch; not an Error, so no stack is captured. */
export class Fail { constructor(readonly message: string) {} }
export const fail = (message: string): never => { throw new Fail(message); };
export const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
export const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
// A tag check rather than a prototype check: context objects may come from another realm (the sandbox).
export const isPlainObject = (x: unknown): x is Record<string, unknown> => isRecord(x) && Object.prototype.toString.call(x) === '[object Object]';
export const errorText = (e: unknown) => (e instanceof Fail ? e.message : `internal error: ${e instanceof Error ? e.name : typeof e}`);

/** A size option: absent gives `fallback`; anything but a non-negative integer fails. */
export function limit(value: number | undefined, fallback: number, name: string): number {
  return value === undefined ? fallback : Number.isSafeInteger(value) && value >= 0 ? value : fail(`option ${name} must be a non-negative integer`);
}

/** Fails on anything but JSON data, so a Date, a function, NaN or undefined cannot be compared. */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (isPlainObject(v)) return 'object';
  const t = typeof v;
  return t === 'boolean' || t === 'string' || (t === 'number' && Number.isFinite(v)) ? t : fail(`unsupported value of type ${t}`);
}
