/** Where the prebuilt workflow bundle lives, and how it is built (`npm run build` does it once). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { PROJECT_ROOT } from './config';
import { FAILURE_CONVERTER_PATH, PAYLOAD_CONVERTER_PATH } from './codec/data-converter';

export const WORKFLOW_BUNDLE_PATH = path.join(PROJECT_ROOT, 'dist', 'workflow-bundle.js');

/**
 * Stateless libraries evaluated once per worker instead of once per workflow. Module scope in the
 * workflow bundle is re-evaluated for every cached run; zod's is large (sdk-typescript #2227).
 * Only modules that keep no per-workflow state may be listed here: they are shared and frozen.
 */
export const PRELOADED_MODULES = [
  'zod',
  '@noble/hashes/sha2',
  '@noble/hashes/utils',
  // Ed25519 builds a ~50 ms lookup table on first use; shared, it is built once per worker.
  '@noble/curves/ed25519',
  path.join(PROJECT_ROOT, 'dist', 'workflows', 'run', 'signatures.js'),
  path.join(PROJECT_ROOT, 'dist', 'workflows', 'zod-sandbox.js'),
];

/**
 * Temporal's OpenTelemetry workflow interceptors (less the per-signal spans, see the module); their
 * spans leave the sandbox through the `exporter` sink.
 */
const WORKFLOW_INTERCEPTOR_MODULE = path.join(__dirname, 'workflow-interceptors.js');
/** The governed run's clock needs this one in every bundle that runs governed runs (workers/workflow-clock.ts). */
export const WORKFLOW_CLOCK_MODULE = path.join(__dirname, 'workflow-clock.js');

export async function buildWorkflowBundle(workflowsPath = path.join(PROJECT_ROOT, 'dist', 'workflows', 'index.js')): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: quietLogger,
    preloadModules: PRELOADED_MODULES,
    // RunWorkflow/StartActivity spans, continued from the client's headers (workers/telemetry.ts).
    workflowInterceptorModules: [WORKFLOW_INTERCEPTOR_MODULE, WORKFLOW_CLOCK_MODULE],
    // Failure messages of workflows go into encodedAttributes, so the codec encrypts them (workers/codec/failure-converter.ts).
    failureConverterPath: FAILURE_CONVERTER_PATH,
    // A payload that does not decode reaches handlers as a marker they refuse, never a failed task.
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
  });
  return code;
}

/** The prebuilt bundle; a clear message when `npm run build` has not run. */
export function prebuiltBundle(): { codePath: string } {
  if (!fs.existsSync(WORKFLOW_BUNDLE_PATH)) {
    throw new Error(`no workflow bundle at ${WORKFLOW_BUNDLE_PATH}: run "npm run build" first`);
  }
  return { codePath: WORKFLOW_BUNDLE_PATH };
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: console.warn, error: console.error, log: noop };
