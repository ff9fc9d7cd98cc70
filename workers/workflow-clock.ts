/**
 * The workflow interceptor the governed run's clock needs (workflows/run/clock.ts): it tells the clock
 * where each activation starts. Every bundle that runs governed runs includes this module
 * (`workflowInterceptorModules`); without it a run fails `WorkerMisconfigured` before it loads policy.
 * Bundled into the workflow sandbox: no Node APIs.
 */
import type { WorkflowInterceptors } from '@temporalio/workflow';
import { activationStarted } from '../workflows/run/clock';

export const interceptors = (): WorkflowInterceptors => ({
  internals: [
    {
      activate(input, next) {
        if (input.batchIndex === 0) activationStarted();
        return next(input);
      },
    },
  ],
});
