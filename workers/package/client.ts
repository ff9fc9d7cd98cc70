/**
 * Public entry of the npm package for services: `portarium-worker` and `portarium-worker/client`.
 * Everything a service needs to start, decide and read governed runs, typed, and nothing that pulls
 * in worker code. Anything not exported here (or from `/worker`, `/policies`) is internal and may
 * change without notice.
 */
// MAINTENANCE: package.json `exports` and `typesVersions` name this file; test/package.test.ts imports only the entries.
export {
  PortariumClient,
  RunHandle,
  type StartedRun,
  InvalidMessageError,
  IdempotencyConflictError,
  WORKFLOW_TYPE,
  decodeRunPayloads,
  failureTypeOf,
  runWorkflowId,
} from '../client';
export { ConfigError, type PortariumConfig, connectionOptions, loadConfig } from '../config';
export { portariumDataConverter } from '../codec/data-converter';
// For updates sent with your own Temporal client: resend one the server dropped unapplied.
export { executeUpdateAgain, updateDroppedUnapplied } from '../../activities/update-again';
// Routing by hand, for a service without policy files (docs/isolation.md).
export { type Isolation, type Pool, TaskQueueRouting } from '../../policies/isolation';
export { FailureType } from '../../workflows/failures';
// Starting runs from CloudEvents (docs/triggers.md); the policies come from `portarium-worker/policies`.
export { type RoutedEvent, type TriggeredRun, TriggerRoutingError, routeCloudEvent, startFromCloudEvent } from '../triggers';
export { type CloudEvent, type HttpMessage, InvalidCloudEventError, parseCloudEvent } from '../cloudevents';
export {
  type AmendRequest,
  type ApprovalRecord,
  type CancelRequest,
  type DecideRequest,
  type Decision,
  DecisionKind,
  type DecisionOutcome,
  type EvidenceReceipt,
  type GovernedAction,
  type GovernedRunInput,
  type GovernedRunResult,
  type JsonValue,
  type ManualCompletion,
  type Principal,
  type RefusalRecord,
  type RunDeadlines,
  type RunQuotaStatus,
  RunState,
  type RunStatus,
  TERMINAL_STATES,
  Tier,
} from '../../workflows/types';
// The message definitions, for services that build their own Temporal `Client` (pass `PortariumClient.dataConverter(config)`).
export {
  amendActionUpdate,
  approveSignal,
  cancelRunSignal,
  decideUpdate,
  type EvidenceView,
  evidenceQuery,
  manualCompletionSignal,
  rejectSignal,
  requestChangesSignal,
  statusQuery,
} from '../../workflows/run/messages';
