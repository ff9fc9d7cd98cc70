/** `npm run build` step: prebuild the workflow bundle so workers start without webpack. */
import * as fs from 'node:fs';
import { buildWorkflowBundle, WORKFLOW_BUNDLE_PATH } from './bundle';

buildWorkflowBundle()
  .then((code) => {
    fs.writeFileSync(WORKFLOW_BUNDLE_PATH, code);
    console.log(`workflow bundle: ${WORKFLOW_BUNDLE_PATH} (${(code.length / 1024).toFixed(0)} KiB)`);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
