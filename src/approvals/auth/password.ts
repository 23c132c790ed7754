import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { AuthError } from './authenticator';

/** scrypt cost parameters of new hashes: 32 MiB and a few tens of milliseconds per check. */
const DEFAULT_PARAMS = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const HASH_PATTERN = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }, length: number): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is just too small for N=2^15, r=8.
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/**
 * Hashes a password for a local users file: `scrypt$N$r$p$salt$hash` (base64url). Development
 * logins only; production inboxes sign people in through OIDC.
 *
 * Without Warden installed: `echo -n 'the password' | npx tsx src/approvals/auth/password.ts`.
 */
export async function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new AuthError('a password cannot be empty');
  const salt = randomBytes(16);
  const key = await derive(password, salt, DEFAULT_PARAMS, KEY_LENGTH);
  const { N, r, p } = DEFAULT_PARAMS;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Whether `hash` has the form `hashPassword` writes, with sane cost parameters. */
export function isPasswordHash(hash: string): boolean {
  const m = HASH_PATTERN.exec(hash);
  if (!m) return false;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds keep a hand-edited file from asking for gigabytes of memory per login.
  return Number.isInteger(Math.log2(N)) && N >= 2 ** 10 && N <= 2 ** 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16;
}

/** Checks a password against a `hashPassword` hash in constant time. False for a malformed hash. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = HASH_PATTERN.exec(hash);
  if (!m || !isPasswordHash(hash)) return false;
  const expected = Buffer.from(m[5] ?? '', 'base64url');
  if (expected.length < 16) return false;
  const key = await derive(password, Buffer.from(m[4] ?? '', 'base64url'), { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }, expected.length);
  return timingSafeEqual(key, expected);
}

if (require.main === module) {
  const chunks: Buffer[] = [];
  process.stdin.on('data', (c: Buffer) => chunks.push(c));
  process.stdin.on('end', () => {
    const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    hashPassword(password).then(
      (hash) => console.log(hash),
      (err: unknown) => {
        console.error(err instanceof Error ? err.message : String(err));
        process.exitCode = 1;
      },
    );
  });
}
