/**
 * What a worker holding a payload key hands on in place of a payload that arrived unencrypted
 * (`PlaintextMarkingCodec`): `{"$wardenPlaintext": {"encoding": "json/plain", "value": …}}`. The
 * workflow's handlers and the activity guard recognise it and refuse it, with a reason, instead of
 * acting on what anyone with a Temporal client could have written.
 *
 * Imported by workflow code (the sandbox) as well as by the worker: no imports, no Node built-ins.
 */

/** The one key of a plaintext marker. A `$` name: zod-made or model-made values do not carry it at the top. */
export const PLAINTEXT_MARKER = '$wardenPlaintext';

/** The failure type of a start input or activity input refused because it arrived unencrypted. Never retried. */
export const PLAINTEXT_PAYLOAD_ERROR = 'PlaintextPayloadError';

/** Where a plaintext payload was found: its encoding, and its value when that was JSON. */
export interface PlaintextFound {
  /** The payload's own `encoding` metadata (`json/plain`, `binary/null`, …), or `(none)`. */
  encoding: string;
  /** The value its sender wrote, for `json/plain` data that parses; absent otherwise. */
  value?: unknown;
}

export interface PlaintextMarker {
  [PLAINTEXT_MARKER]: PlaintextFound;
}

/** Whether a decoded value is a plaintext marker (and nothing else). */
export function isPlaintext(value: unknown): value is PlaintextMarker {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== PLAINTEXT_MARKER) return false;
  const found = (value as Record<string, unknown>)[PLAINTEXT_MARKER];
  return typeof found === 'object' && found !== null && typeof (found as { encoding?: unknown }).encoding === 'string';
}

/**
 * Why a plaintext payload is refused, naming what should have been encrypted (`what`: "the start
 * input of agentRun", "the resume signal", "the input of activity echo").
 */
export function plaintextRefusal(what: string): string {
  return `plaintext payload refused: this worker holds a payload key, and ${what} arrived unencrypted (send it with a Warden client that has the payload keys, or encode it through the codec endpoint)`;
}
