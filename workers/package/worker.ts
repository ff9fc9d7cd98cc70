/**
 * Public entry of the npm package for processes that run workers: `portarium-worker/worker`. The
 * wiring `node dist/workers/main.js` uses, so a service can host workers in its own process with the
 * package's prebuilt workflow bundle (dist/workflow-bundle.js, found next to this file).
 */
// MAINTENANCE: package.json `exports` and `typesVersions` name this file; test/package.test.ts imports only the entries.
export {
  type ServedQueue,
  type WorkerParts,
  configuredRuntimes,
  configuredSecretStore,
  connectWorker,
  createPortariumWorker,
  createPortariumWorkers,
  missingSearchAttributes,
  servedQueues,
} from '../worker';
export { WORKFLOW_BUNDLE_PATH, WORKFLOW_CLOCK_MODULE, prebuiltBundle } from '../bundle';
export { ConfigError, type PortariumConfig, loadConfig } from '../config';
export { payloadKeyProvider, workerDataConverter } from '../codec/data-converter';
export { configuredEvidenceSink } from '../evidence';
export { type Telemetry, startTelemetry } from '../telemetry';
export { applyWorkflowHeap, workflowHeap } from '../cache-size';
export type { RuntimeAdapter, RuntimeCall, RuntimeOutcome } from '../../activities/runtimes/port';
export { AGENT_TOOLS_RUNTIME, type AgentToolCall, type AgentToolImplementation, createAgentToolsRuntime } from '../../activities/runtimes/agent-tools';
// Loads @modelcontextprotocol/sdk (an optional peer) only when a call reaches it.
export { type McpRuntime, type McpServerConfig, createMcpRuntime } from '../../activities/runtimes/mcp';
export type { EvidenceSink } from '../../activities/evidence/sink';
export type { SecretStore } from '../../activities/secrets/port';
