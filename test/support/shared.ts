/** What the root hooks set up, for every suite. */
import type { TestWorkflowEnvironment } from '@temporalio/testing';

export const shared: { env?: TestWorkflowEnvironment; address?: string } = {};

export function testEnv(): TestWorkflowEnvironment {
  if (!shared.env) throw new Error('the root hook did not start a Temporal server');
  return shared.env;
}
