/**
 * Payload encryption: a Temporal `PayloadCodec` that keeps payloads out of Temporal's history in
 * clear, its key files, and the remote codec endpoint the Temporal UI and CLI decode through.
 */
export { EncryptionCodec, ENCRYPTED_ENCODING, ENCRYPTION_KEY_ID_METADATA } from './encryption-codec';
export { PayloadCodecError, PayloadKeyError } from './errors';
export { createPayloadKeyFile, devPayloadKeysFile, ensureDevPayloadKeys, loadPayloadKeys, parsePayloadKeys, payloadKeysSchema } from './keys';
export type { PayloadKeys } from './keys';
export { createCodecHandler, DEFAULT_CODEC_DECODE_GROUPS, DEFAULT_CODEC_ENCODE_GROUPS } from './endpoint';
export type { CodecEndpointOptions, CodecRequestHandler } from './endpoint';
