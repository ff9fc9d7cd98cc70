/** Assertions on typed failures from activities and adapters, and a small wait helper for fakes. */
import { ApplicationFailure } from '@temporalio/common';

/** The ApplicationFailure a promise rejects with; anything else (or success) fails the test. */
export async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

/** The failure type a promise rejects with. Tests assert on it, never on message text. */
export const typeOf = async (p: Promise<unknown>): Promise<string | undefined> => (await failureOf(p)).type ?? undefined;

/** Wait until `cond` holds (polling every 10 ms), or throw after `ms`. */
export async function until(cond: () => boolean, ms = 3_000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 10))) if (Date.now() > end) throw new Error('condition not met');
}
