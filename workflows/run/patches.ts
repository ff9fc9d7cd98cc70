/**
 * Patches asked outside governed-run's main flow (quota, revocation, break-glass, standing grants).
 *
 * Runs started after LEAN_LOCAL_SNAPSHOT_PATCH ask none: each of these applies to them. Asking would
 * record a marker, and a marker recorded in the activation that resolves the policy snapshot's local
 * activity is met by core, on replay, before the workflow has asked for it (a nondeterminism error,
 * seen on a status query of a run waiting for quota). A patch added later is asked before the
 * snapshot is loaded, in the first activation.
 */
import { patched } from '@temporalio/workflow';

export function patchApplies(run: { readonly localSnapshot: boolean }, id: string): boolean {
  return run.localSnapshot || patched(id);
}
