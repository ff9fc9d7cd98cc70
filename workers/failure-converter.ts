/**
 * The failure converter of workers, clients and the workflow bundle (`failureConverterPath`): failure
 * messages and stack traces move into `encodedAttributes`, a payload, so the codec encrypts them too.
 * The plaintext message left in history is `Encoded failure`; failure types stay plaintext.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
