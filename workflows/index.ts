/** Workflow bundle entry (`workflowsPath`): workflow functions only. */
export { governedRun } from './run/governed-run';
export { runEventDelivery } from './events/delivery';
export { workspaceQuota } from './quota/coordinator';
export { breakGlassLedger } from './break-glass/ledger';
export { revocationRegistry } from './revocation/registry';
export { grantRegistry } from './grants/registry';
