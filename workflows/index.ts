/** Workflow bundle entry (`workflowsPath`): workflow functions only. */
export { governedRun } from './governed-run';
export { runEventDelivery } from './run-event-delivery';
export { workspaceQuota } from './workspace-quota';
