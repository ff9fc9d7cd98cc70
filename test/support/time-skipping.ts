/** The time-skipping test server, with the Portarium search attributes registered. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/search-attributes';
import { testDataConverter } from './shared';
import { temporalTestServer } from './temporal-binaries';

/** `IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD` in the Temporal API. */
const KEYWORD = 2;
/** `IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST`. */
const KEYWORD_LIST = 7;

export async function startTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalTestServer() } },
    // Encryption on here too: the same codec and failure converter as the workers.
    client: { dataConverter: testDataConverter() },
  });
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_KEYS.map((k) => [k.name, k.type === 'KEYWORD_LIST' ? KEYWORD_LIST : KEYWORD])),
  });
  return env;
}
