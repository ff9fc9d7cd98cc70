/**
 * Root hooks: install the Runtime once, start one real Temporal dev server for the whole run, and
 * share a TestWorkflowEnvironment connected to it. Suites that need time skipping start their own.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { type DevServer, startDevServer } from './support/dev-server';
import { captureLog, shared, testDataConverter } from './support/shared';

let server: DevServer | undefined;

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    // Everything from DEBUG up is kept in memory so suites can scan logs for leaked secrets; only errors print.
    Runtime.install({ logger: new DefaultLogger('DEBUG', captureLog) });
    server = await startDevServer();
    shared.address = server.address;
    // The client encrypts and decrypts like the workers: every suite runs with payload encryption on.
    shared.env = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address, client: { dataConverter: testDataConverter() } });
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(30_000);
    await shared.env?.teardown();
    await server?.stop();
  },
};
