/**
 * Client side of emergency revocation: start the namespace's registry if it is not running
 * (signalWithStart of a ping, so concurrent callers meet one registry), then revoke, lift or list by
 * update and query. Used by the CLI and by services; the workflow checks every request again.
 */
import type { Client } from '@temporalio/client';
import { executeUpdateAgain } from '../activities/update-again';
import { liftUpdate, registryPingSignal, revocationsQuery, revokeUpdate } from '../workflows/revocation/messages';
import { type LiftRequest, REVOCATION_REGISTRY_ID, type Revocation, type RevokeRequest, type RevocationsView } from '../workflows/revocation/types';

export class RevocationClient {
  constructor(
    readonly client: Client,
    /** The shared task queue: any worker polling it runs the registry. */
    readonly taskQueue: string,
    readonly registryId: string = REVOCATION_REGISTRY_ID,
  ) {}

  /** The registry, started if it is not running. */
  async registry() {
    return this.client.workflow.signalWithStart('revocationRegistry', {
      workflowId: this.registryId,
      taskQueue: this.taskQueue,
      args: [{ schemaVersion: 1 }],
      signal: registryPingSignal,
      signalArgs: [],
    });
  }

  async revoke(req: RevokeRequest): Promise<Revocation> {
    return executeUpdateAgain(await this.registry(), revokeUpdate, { args: [req] });
  }

  async lift(req: LiftRequest): Promise<Revocation> {
    return executeUpdateAgain(await this.registry(), liftUpdate, { args: [req] });
  }

  async list(): Promise<RevocationsView> {
    return (await this.registry()).query(revocationsQuery);
  }
}
