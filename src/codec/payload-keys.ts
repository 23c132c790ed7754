import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PayloadKeyError } from './codec-errors';
import { writePrivateFile } from '../private-files';
import { formatZodError } from '../zod-error';

// Key ids travel in clear in every payload's metadata: short and plain, so they never need escaping.
const keyIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');

/**
 * A payload keyset: `current` encrypts, every key in `keys` decrypts. Rotating a key adds a new
 * one and points `current` at it; the old key stays until no history written with it is read.
 */
export const payloadKeysSchema = z
  .strictObject({
    current: keyIdSchema,
    keys: z.record(keyIdSchema, z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be a 256-bit AES key written as 64 hex characters')),
  })
  .refine((k) => Object.hasOwn(k.keys, k.current), { path: ['current'], error: 'must name one of the keys listed in "keys"' });

export type PayloadKeys = z.output<typeof payloadKeysSchema>;

/** Validates a keyset document; the error names `source` and what is wrong (never a key). */
export function parsePayloadKeys(doc: unknown, source: string): PayloadKeys {
  const parsed = payloadKeysSchema.safeParse(doc);
  if (!parsed.success) throw new PayloadKeyError(`${source}: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * Reads a payload key file (`{"current": "<keyId>", "keys": {"<keyId>": "<64 hex>"}}`). A file
 * that group or others may read is refused: whoever reads it can read every payload in history.
 */
export function loadPayloadKeys(file: string): PayloadKeys {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new PayloadKeyError(`cannot read payload key file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Windows has no POSIX mode bits: statSync reports 0o666 for every file there.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new PayloadKeyError(`payload key file ${file} is open to group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new PayloadKeyError(`cannot read payload key file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parsePayloadKeys(doc, `payload key file ${file}`);
}

/**
 * Writes a new key file with one random key as `current` (mode 0600, parent dirs created).
 * Refuses to overwrite a file: losing a key makes every payload written with it unreadable.
 */
export function createPayloadKeyFile(file: string, keyId = newPayloadKeyId()): PayloadKeys {
  const keys = parsePayloadKeys({ current: keyId, keys: { [keyId]: randomBytes(32).toString('hex') } }, `new payload key file ${file}`);
  try {
    // `wx` fails if the file exists, also when another process creates it at the same moment.
    // New directories on the way are 0700 and the file exactly 0600, whatever the umask.
    writePrivateFile(file, JSON.stringify(keys, null, 2) + '\n', 'wx');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'EEXIST') throw new PayloadKeyError(`payload key file ${file} exists already; it is not overwritten (payloads written with its keys would become unreadable)`);
    throw new PayloadKeyError(`cannot write payload key file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return keys;
}

/** Where `warden dev` keeps its payload key: `<home>/keys/payload.json`. */
export function devPayloadKeysFile(home: string): string {
  return path.join(home, 'keys', 'payload.json');
}

/**
 * The development payload keys under `<home>/keys/payload.json`, created on first use. For
 * `warden dev` and demos; production gives workers and clients a key file through
 * `WARDEN_PAYLOAD_KEYS`, kept in a secret store.
 */
export function ensureDevPayloadKeys(home: string): { file: string; keys: PayloadKeys; created: boolean } {
  const file = devPayloadKeysFile(home);
  if (existsSync(file)) return { file, keys: loadPayloadKeys(file), created: false };
  return { file, keys: createPayloadKeyFile(file, 'dev-1'), created: true };
}

/** A key id for a new payload key: `key-<date>-<6 hex>`. */
export function newPayloadKeyId(): string {
  return `key-${new Date().toISOString().slice(0, 10)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Rotates a payload key file: adds a fresh random key and makes it `current`; every older key
 * stays, so payloads written with them (runs in history) still decrypt. The file is replaced
 * whole (written next to it, 0600, renamed), so a process reading it never sees half a file.
 * Refuses a key id the file has already. Returns the new keyset.
 */
export function rotatePayloadKeyFile(file: string, keyId: string = newPayloadKeyId()): PayloadKeys {
  const before = loadPayloadKeys(file);
  if (Object.hasOwn(before.keys, keyId)) throw new PayloadKeyError(`payload key file ${file} has a key "${keyId}" already; a rotation adds a new key id`);
  const after = parsePayloadKeys({ current: keyId, keys: { ...before.keys, [keyId]: randomBytes(32).toString('hex') } }, `rotated payload key file ${file}`);
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writePrivateFile(temp, JSON.stringify(after, null, 2) + '\n', 'wx');
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new PayloadKeyError(`cannot write payload key file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return after;
}
