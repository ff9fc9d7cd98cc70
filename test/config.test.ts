/** Worker configuration from the environment: defaults, precedence, and errors that name the variable. */
import * as assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../workers/config';

describe('config', function () {
  it('defaults to a local dev server and the portarium task queue', function () {
    const c = loadConfig({});
    assert.equal(c.temporal.address, 'localhost:7233');
    assert.equal(c.temporal.namespace, 'default');
    assert.equal(c.taskQueue, 'portarium');
    assert.equal(c.temporal.tls, undefined);
  });

  it('reads the environment; explicit overrides win; blank counts as unset', function () {
    const env = { TEMPORAL_ADDRESS: 'temporal.prod:7233', TEMPORAL_NAMESPACE: ' ', PORTARIUM_TASK_QUEUE: 'q', TEMPORAL_API_KEY: 'k' };
    const c = loadConfig(env, { taskQueue: 'explicit' });
    assert.equal(c.temporal.address, 'temporal.prod:7233');
    assert.equal(c.temporal.namespace, 'default');
    assert.equal(c.taskQueue, 'explicit');
    assert.ok(c.temporal.tls, 'an API key implies TLS');
  });

  it('names the variable, the expectation and the value given', function () {
    assert.throws(() => loadConfig({ PORTARIUM_MAX_CACHED_WORKFLOWS: 'lots' }), (e: Error) =>
      e instanceof ConfigError && /PORTARIUM_MAX_CACHED_WORKFLOWS/.test(e.message) && /"lots"/.test(e.message));
    assert.throws(() => loadConfig({ PORTARIUM_TASK_QUEU: 'typo' }), /unknown setting PORTARIUM_TASK_QUEU/);
    assert.throws(() => loadConfig({ TEMPORAL_TLS_CERT_PATH: '/nope.pem' }), /TEMPORAL_TLS_KEY_PATH/);
    assert.throws(() => loadConfig({ TEMPORAL_TLS_CERT_PATH: '/nope.pem', TEMPORAL_TLS_KEY_PATH: '/nope.key' }), /no file at \/nope.pem/);
  });
});
