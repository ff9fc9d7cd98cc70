/** Bundles a workflow file written by a test (outside the project) into workflow code a Worker can run. */
import * as path from 'node:path';
import { type BundleOptions, bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from '../../workers/config';

type Configuration = Parameters<NonNullable<BundleOptions['webpackConfigHook']>>[0];

const noop = () => undefined;
const logger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

export async function bundleTestWorkflows(workflowsPath: string): Promise<string> {
  // The SDK's generated entrypoint sits next to the workflow file, outside the project, so it
  // cannot find @temporalio/workflow by walking up; point webpack at the project's node_modules.
  const webpackConfigHook = (config: Configuration): Configuration => ({
    ...config,
    resolve: { ...config.resolve, modules: [...(config.resolve?.modules ?? []), path.join(PROJECT_ROOT, 'node_modules')] },
  });
  const { code } = await bundleWorkflowCode({ workflowsPath, logger, webpackConfigHook });
  return code;
}
