import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { PayloadCodecError, PayloadKeyError } from './codec-errors';
import { parsePayloadKeys, type PayloadKeys } from './payload-keys';

/** The `encoding` of an encrypted payload; anything else passes through `decode` untouched. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key a payload was encrypted with (in clear: it is what lets keys rotate). */
export const ENCRYPTION_KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const text = (bytes: Uint8Array | null | undefined): string | undefined => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/**
 * A Temporal `PayloadCodec` that encrypts every payload with AES-256-GCM, so Temporal's history
 * holds ciphertext only. The whole payload (its metadata and data) is serialised and encrypted,
 * as in Temporal's encryption sample; the stored payload carries `encoding: binary/encrypted`,
 * the key id, and `data` = 12-byte random IV, ciphertext, 16-byte tag.
 *
 * Give the same codec (the same keyset) to every worker and client of a namespace: a worker that
 * cannot decrypt fails its tasks until it gets the key. Encodes with `keys.current`, decodes with
 * any key of the set, and passes through payloads that are not encrypted (histories written
 * before encryption was turned on, search attributes); a worker refuses those through
 * `PlaintextMarkingCodec` instead. Codecs run outside the workflow sandbox.
 */
export class EncryptionCodec implements PayloadCodec {
  private readonly keys: ReadonlyMap<string, Buffer>;
  /** The key new payloads are encrypted with. */
  readonly currentKeyId: string;

  constructor(keys: PayloadKeys) {
    const valid = parsePayloadKeys(keys, 'EncryptionCodec keys');
    this.currentKeyId = valid.current;
    this.keys = new Map(Object.entries(valid.keys).map(([id, hex]) => [id, Buffer.from(hex, 'hex')]));
  }

  /** The ids of every key this codec can decrypt with. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  private encrypt(payload: Payload): Payload {
    const keyId = this.currentKeyId;
    const key = this.keys.get(keyId);
    // The constructor checked that `current` is in the set; this keeps the type honest.
    if (!key) throw new PayloadKeyError(`no key "${keyId}" to encrypt with`);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [ENCRYPTION_KEY_ID_METADATA]: utf8(keyId) },
      data: sealed,
    };
  }

  private decrypt(payload: Payload): Payload {
    if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
    const keyId = text(payload.metadata?.[ENCRYPTION_KEY_ID_METADATA]);
    if (!keyId) throw new PayloadKeyError(`an encrypted payload has no "${ENCRYPTION_KEY_ID_METADATA}" metadata: cannot tell which key decrypts it`);
    const key = this.keys.get(keyId);
    if (!key) {
      throw new PayloadKeyError(`a payload is encrypted with key "${keyId}", which is not in this keyset (it has ${this.keyIds.map((id) => `"${id}"`).join(', ')}); add that key to the payload key file to read it`);
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadCodecError(`a payload encrypted with key "${keyId}" is truncated (${data.length} bytes)`);
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadCodecError(`a payload encrypted with key "${keyId}" does not decrypt: the key file's "${keyId}" is not the key it was written with, or the payload was altered`);
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}
