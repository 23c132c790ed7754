import { ApplicationFailure, log } from '@temporalio/workflow';
import { PLAINTEXT_MARKER, PLAINTEXT_PAYLOAD_ERROR, isPlaintext, plaintextRefusal } from '../codec/plaintext-marker';
import type { AuditEventType } from '../governance/workflow-safe';
import { PlaintextUpdateError } from './update-refusals';

/**
 * How a run treats messages that arrived unencrypted although its worker holds a payload key: the
 * worker's codec hands them on as plaintext markers (`src/codec/plaintext-marker.ts`), and these
 * wrappers refuse them before a handler acts. Never by failing the workflow task: that would be
 * retried for ever, and one plaintext signal would wedge the run. Without a key, or with
 * `acceptPlaintextPayloads`, no marker ever arrives and nothing here changes what a run does.
 */

type Recorder = (type: AuditEventType, data: Record<string, unknown>) => void;

/** Refuses a start input (or carried state) that arrived unencrypted: the run fails at once, having done nothing. */
export function refusePlaintextStart(input: unknown, workflow: string): void {
  if (!isPlaintext(input)) return;
  const reason = plaintextRefusal(`the start input of ${workflow}`);
  log.warn(reason, { encoding: input[PLAINTEXT_MARKER].encoding });
  throw ApplicationFailure.nonRetryable(reason, PLAINTEXT_PAYLOAD_ERROR);
}

/**
 * A signal handler that acts only on encrypted input: a plaintext one is audited
 * (`unencrypted_message`, refused) and changes nothing.
 */
export function sealedSignal<A extends unknown[]>(name: string, record: Recorder, handler: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const plain = args.find(isPlaintext);
    if (!plain) return handler(...args);
    const reason = plaintextRefusal(`the ${name} signal`);
    log.warn(reason, { signal: name });
    record('unencrypted_message', { message: name, via: 'signal', accepted: false, encoding: plain[PLAINTEXT_MARKER].encoding, reason });
  };
}

/**
 * A signal anyone may send, encrypted or not (a pause only asks for a safer state): a plaintext
 * input is unwrapped, audited as unencrypted (`unencrypted_message`, accepted; what it claims is
 * unverified), and handled.
 */
export function openSignal<A extends unknown[]>(name: string, record: Recorder, handler: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const plain = args.find(isPlaintext);
    if (!plain) return handler(...args);
    record('unencrypted_message', { message: name, via: 'signal', accepted: true, encoding: plain[PLAINTEXT_MARKER].encoding });
    return handler(...(args.map((a) => (isPlaintext(a) ? a[PLAINTEXT_MARKER].value : a)) as A));
  };
}

/**
 * An Update validator that refuses plaintext input before anything is recorded (validators must
 * not change state, so the refusal is the caller's error and the worker's log), then `validator`.
 */
export function sealedValidator<A extends unknown[]>(name: string, validator: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    if (args.some(isPlaintext)) {
      const reason = plaintextRefusal(`the ${name} Update`);
      log.warn(reason, { update: name });
      throw new PlaintextUpdateError(reason);
    }
    validator(...args);
  };
}
