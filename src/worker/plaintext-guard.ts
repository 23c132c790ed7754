import { ApplicationFailure, type PayloadCodec } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Logger } from 'pino';
import { EncryptionCodec } from '../codec/encryption-codec';
import { PlaintextMarkingCodec } from '../codec/plaintext-codec';
import { PLAINTEXT_PAYLOAD_ERROR, isPlaintext, plaintextRefusal } from '../codec/plaintext-marker';

/** What a worker runs with to refuse plaintext payloads: its codecs and an activity interceptor. */
export interface PlaintextGuard {
  payloadCodecs: PayloadCodec[];
  activityInterceptors: ActivityInterceptorsFactory[];
}

/**
 * Refuses an activity whose input arrived as a plaintext marker, before the activity does
 * anything: any workflow in the namespace can schedule a Warden activity, and only a key holder
 * can write its input encrypted. Never retried.
 */
function refusingActivityInterceptor(logger: Logger): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        if (input.args.some(isPlaintext)) {
          const { activityType, workflowExecution, workflowType } = ctx.info;
          const message = plaintextRefusal(`the input of activity ${activityType}`);
          logger.warn({ activity: activityType, workflowId: workflowExecution?.workflowId, workflowRunId: workflowExecution?.runId, workflowType }, message);
          throw ApplicationFailure.create({ type: PLAINTEXT_PAYLOAD_ERROR, message, nonRetryable: true });
        }
        return next(input);
      },
    },
  });
}

/**
 * The plaintext refusal of a worker with `payloadCodec`: with a payload key (`EncryptionCodec`), a
 * payload that arrives unencrypted is decoded as a plaintext marker, which the workflow's start,
 * signals and Updates and this activity interceptor refuse (a pause is taken, and audited as
 * unencrypted). `accept` (migration only) turns that off, loudly. Any other codec, or none: nothing
 * to refuse with, nothing changes.
 */
export function plaintextGuard(payloadCodec: PayloadCodec | undefined, accept: boolean, logger: Logger): PlaintextGuard {
  if (!payloadCodec) return { payloadCodecs: [], activityInterceptors: [] };
  if (!(payloadCodec instanceof EncryptionCodec)) return { payloadCodecs: [payloadCodec], activityInterceptors: [] };
  if (accept) {
    logger.warn(
      'PLAINTEXT ACCEPTED: this worker holds a payload key but takes unencrypted payloads too (acceptPlaintextPayloads, WARDEN_ACCEPT_PLAINTEXT_PAYLOADS=1): ' +
        'anyone with a Temporal client can start runs, decide approvals and send operator signals without the key. For a migration only; turn it off once no run started in clear is left.',
    );
    return { payloadCodecs: [payloadCodec], activityInterceptors: [] };
  }
  return { payloadCodecs: [new PlaintextMarkingCodec(payloadCodec)], activityInterceptors: [refusingActivityInterceptor(logger)] };
}
