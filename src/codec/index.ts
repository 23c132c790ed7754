/**
 * Payload encryption: a Temporal `PayloadCodec` that keeps payloads out of Temporal's history in
 * clear, its key files, the worker's refusal of payloads that arrive in clear, and the remote codec
 * endpoint the Temporal UI and CLI decode through.
 */
export { EncryptionCodec, ENCRYPTED_ENCODING, ENCRYPTION_KEY_ID_METADATA } from './encryption-codec';
export { PayloadCodecError, PayloadKeyError } from './codec-errors';
export { PlaintextMarkingCodec, isEncryptedPayload } from './plaintext-codec';
export { PLAINTEXT_PAYLOAD_ERROR, isPlaintext } from './plaintext-marker';
export type { PlaintextMarker } from './plaintext-marker';
export { createPayloadKeyFile, devPayloadKeysFile, ensureDevPayloadKeys, loadPayloadKeys, newPayloadKeyId, parsePayloadKeys, payloadKeysSchema, rotatePayloadKeyFile } from './payload-keys';
export type { PayloadKeys } from './payload-keys';
export { createCodecHandler, DEFAULT_CODEC_DECODE_GROUPS, DEFAULT_CODEC_ENCODE_GROUPS } from './endpoint';
export type { CodecEndpointOptions, CodecRequestHandler } from './endpoint';
