import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import { ENCRYPTED_ENCODING } from './encryption-codec';
import { PLAINTEXT_MARKER, type PlaintextFound } from './plaintext-marker';

const text = (bytes: Uint8Array | null | undefined): string | undefined => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** Whether a payload as stored is encrypted by `EncryptionCodec` (its `encoding` says so; decrypting proves it). */
export function isEncryptedPayload(payload: Payload): boolean {
  return text(payload.metadata?.[METADATA_ENCODING_KEY]) === ENCRYPTED_ENCODING;
}

/** The marker payload for a payload that arrived unencrypted: JSON the default converter reads as `{"$wardenPlaintext": …}`. */
function markerFor(payload: Payload): Payload {
  const encoding = text(payload.metadata?.[METADATA_ENCODING_KEY]) ?? '(none)';
  const found: PlaintextFound = { encoding };
  if (encoding === 'json/plain') {
    try {
      found.value = JSON.parse(text(payload.data) ?? '') as unknown;
    } catch {
      // Not JSON after all: the marker says only where it came from.
    }
  }
  return { metadata: { [METADATA_ENCODING_KEY]: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify({ [PLAINTEXT_MARKER]: found })) };
}

/**
 * The decoding side of a worker that holds a payload key: encrypted payloads are decrypted by
 * `inner`; any other payload is handed on as a plaintext marker (`isPlaintext` in
 * `plaintext-marker.ts`) instead of the value its sender wrote, so that the workflow and the
 * activity guard refuse it with a reason. Anyone with a Temporal client can write a plaintext
 * payload; only a key holder can write an encrypted one.
 *
 * It never throws for a plaintext payload: the worker decodes a workflow's signals and Updates
 * before its code runs, and a codec error there fails the workflow task on every retry, so one
 * plaintext signal would wedge the run. Encoding is `inner`'s, unchanged.
 *
 * Workers only: clients and replays keep `inner` as it is, which passes plaintext through
 * (histories recorded before encryption was turned on).
 */
export class PlaintextMarkingCodec implements PayloadCodec {
  constructor(
    private readonly inner: PayloadCodec,
    private readonly isSealed: (payload: Payload) => boolean = isEncryptedPayload,
  ) {}

  encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    return this.inner.encode(payloads, context);
  }

  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    const sealed = payloads.filter((p) => this.isSealed(p));
    if (sealed.length === payloads.length) return this.inner.decode(payloads, context);
    const opened = sealed.length > 0 ? await this.inner.decode(sealed, context) : [];
    let next = 0;
    return payloads.map((p) => (this.isSealed(p) ? (opened[next++] ?? p) : markerFor(p)));
  }
}
