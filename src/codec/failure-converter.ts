import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Moves a failure's message and stack trace into an encoded payload, so the payload codec
 * encrypts them like everything else (a tool error that quotes a secret stays out of history).
 * Workers load it by path (it runs in the workflow sandbox too: no Node built-ins here).
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
