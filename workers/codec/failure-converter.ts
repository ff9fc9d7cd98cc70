/**
 * The failure converter of workers, clients and the workflow bundle (`failureConverterPath`): failure
 * messages and stack traces move into `encodedAttributes`, a payload, so the codec encrypts them too.
 * Failure types stay plaintext. The plaintext message left in history starts `Encoded failure`, as
 * Temporal's own marker does, and names the type and where to read the message: the Temporal CLI's
 * text output prints only this field (`temporal workflow result`), while its `-o json`, the Web UI
 * (both through the codec server) and Portarium's clients show the decoded message.
 */
import { DefaultFailureConverter, type PayloadConverter, type ProtoFailure, type SerializationContext } from '@temporalio/common';

const ENCODED_FAILURE_HINT = 'the message is encrypted; through the codec, `-o json` or the Web UI shows it';

class EncryptedFailureConverter extends DefaultFailureConverter {
  constructor() {
    super({ encodeCommonAttributes: true });
  }

  override errorToFailure(err: unknown, payloadConverter: PayloadConverter, context?: SerializationContext): ProtoFailure {
    const failure = super.errorToFailure(err, payloadConverter, context);
    if (failure.encodedAttributes) {
      const type = failure.applicationFailureInfo?.type;
      failure.message = `Encoded failure${type ? ` (${type})` : ''}: ${ENCODED_FAILURE_HINT}`;
    }
    return failure;
  }
}

// Read by name by the SDK (`failureConverterPath` loads this module and takes `failureConverter`).
export const failureConverter = new EncryptedFailureConverter();
