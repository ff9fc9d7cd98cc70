/**
 * The body a Langflow action may send to `/run`, checked before anything is sent. Langflow 1.13 does
 * not refuse a bad body (it runs the flow with empty input and answers 200), so every field is
 * checked here against the set and shapes Langflow reads; `user_id` and `__proto__` keys are refused.
 */
import { z } from 'zod';
import { TweakField, TweakKey } from '../../policies/langflow-tweaks';
import { runtimeRejected } from '../../workflows/failures';
import type { DispatchRequest } from '../../workflows/types';

/** A flow UUID or a flow's endpoint name. */
const FLOW = /^[A-Za-z0-9_-]{1,128}$/;

/** Largest `input_value`, in UTF-8 bytes (the whole action input is bounded at 256 KiB too). */
const MAX_INPUT_VALUE_BYTES = 128 * 1024;
const MAX_TWEAKED = 100;
const bounded = (max: number) => (r: object) => Object.keys(r).length <= max;

/**
 * `action.input` of a Langflow action: the body of `/run`, minus `stream`. Langflow 1.13 does not
 * refuse a bad body (it runs the flow with empty input and answers 200), so it is checked here.
 */
export const LangflowInput = z.strictObject({
  input_value: z.string().refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_INPUT_VALUE_BYTES, `at most ${MAX_INPUT_VALUE_BYTES} bytes`),
  input_type: z.enum(['chat', 'text', 'any']).default('chat'),
  output_type: z.enum(['chat', 'text', 'any', 'debug']).default('chat'),
  /** Node id of the output to return; empty means the outputs `output_type` selects. */
  output_component: z.union([z.literal(''), TweakKey]).optional(),
  /** Per component (node id, name or display name), field values to override. */
  tweaks: z
    .record(TweakKey, z.record(TweakField, z.unknown()).refine(bounded(MAX_TWEAKED), `at most ${MAX_TWEAKED} fields per component`))
    .refine(bounded(MAX_TWEAKED), `at most ${MAX_TWEAKED} components`)
    .optional(),
  /** Scopes the flow's chat memory. @default the run's correlation id */
  session_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,255}$/, 'expected 1-256 letters, digits and . _ : @ / + = - (starting with a letter or digit)').optional(),
});
export type LangflowInput = z.infer<typeof LangflowInput>;

/** The flow and body of an action, or a typed refusal (`RuntimeRejected`) saying what is wrong. */
export function parseLangflowAction(request: Pick<DispatchRequest, 'target' | 'input'>): { flow: string; input: LangflowInput } {
  const { target, input } = request;
  if (!FLOW.test(target)) throw runtimeRejected(`langflow: target must be a flow id or endpoint name (letters, digits, _ and -, at most 128), got ${JSON.stringify(target.slice(0, 140))}`);
  // Langflow 1.13 takes a user_id, which lets a caller run the flow as another Langflow user: it is
  // never sent. The run acts as the owner of the workspace's API key (docs/runtimes.md).
  if (input && Object.hasOwn(input, 'user_id')) throw runtimeRejected(`langflow: user_id is not accepted for flow ${target}: it would run the flow as another Langflow user; runs act as the owner of the workspace's API key`, { reason: 'userIdNotAccepted' });
  // zod drops a `__proto__` key from records silently, so such a tweak would go unchecked: refuse it.
  const tweaks = (input as { tweaks?: unknown }).tweaks;
  const proto = (v: unknown) => typeof v === 'object' && v !== null && Object.hasOwn(v, '__proto__');
  if (proto(tweaks) || (typeof tweaks === 'object' && tweaks !== null && Object.values(tweaks).some(proto))) {
    throw runtimeRejected(`langflow: bad action input for flow ${target}: tweaks may not use the key __proto__`, { issues: [{ path: 'tweaks', message: 'the key __proto__ is not a component or field' }] });
  }
  const parsed = LangflowInput.safeParse(input);
  if (!parsed.success) throw runtimeRejected(`langflow: bad action input for flow ${target}:\n${z.prettifyError(parsed.error)}`, { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  return { flow: target, input: parsed.data };
}
