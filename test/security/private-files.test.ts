/**
 * Every directory and file Warden creates for keys, passwords and run data is 0700 / 0600 even
 * under the usual umask 022 (which leaves `mkdir` at 0755 and a new file at 0644): each made
 * through the real function that makes it, then stat-ed.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSigningKey, ensureDevKeys } from '../../src/approvals/signing-keys';
import { ensureDevUsers } from '../../src/cli/dev-users';
import { ensureDevPayloadKeys } from '../../src/codec';
import { startDevServer } from '../../src/dev-server';
import { readGoldenCase, writeGoldenCase } from '../../src/eval/case-schema';
import { ensureWardenHome } from '../../src/private-files';
import { createSqliteStore } from '../../src/store';

const modeOf = (p: string): string => (statSync(p).mode & 0o777).toString(8).padStart(4, '0');

/** Every directory and file under `dir` (itself included), with its mode. */
function modesUnder(dir: string): Record<string, string> {
  const modes: Record<string, string> = { '.': modeOf(dir) };
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) modes[entry] = modeOf(path.join(dir, entry));
  return modes;
}

let tmp: string;
let umask: number;
beforeEach(() => {
  umask = process.umask(0o022);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-private-'));
  // The temp dir itself is the user's (mkdtemp makes it 0700); what is made inside it is Warden's.
  chmodSync(tmp, 0o755);
});
afterEach(() => {
  process.umask(umask);
  rmSync(tmp, { recursive: true, force: true });
});

describe('under umask 022, Warden makes its directories 0700 and its files 0600', () => {
  test('development signing keys and the trusted-keys file (ensureDevKeys)', () => {
    const home = path.join(tmp, '.warden');
    ensureDevKeys(home, { alice: ['finance'] });
    expect(modesUnder(home)).toEqual({ '.': '0700', keys: '0700', 'keys/cli.json': '0600', 'keys/web.json': '0600', 'keys/slack.json': '0600', 'trusted-keys.json': '0600' });
  });

  test('a signing key written by `warden keys generate --out` into new directories (createSigningKey)', () => {
    createSigningKey(path.join(tmp, 'secrets', 'people', 'alice.json'), 'cli-alice');
    expect(modesUnder(path.join(tmp, 'secrets'))).toEqual({ '.': '0700', people: '0700', 'people/alice.json': '0600' });
  });

  test('the development payload key (ensureDevPayloadKeys)', () => {
    const home = path.join(tmp, '.warden');
    ensureDevPayloadKeys(home);
    expect(modesUnder(home)).toEqual({ '.': '0700', keys: '0700', 'keys/payload.json': '0600' });
  });

  test('the inbox users file and the development passwords (ensureDevUsers)', async () => {
    const home = path.join(tmp, '.warden');
    await ensureDevUsers(home);
    expect(modesUnder(home)).toEqual({ '.': '0700', 'users.yaml': '0600', 'dev-passwords.txt': '0600' });
  });

  test('the run store with its -wal and -shm (createSqliteStore)', async () => {
    const home = path.join(tmp, '.warden');
    const store = createSqliteStore(path.join(home, 'warden.db'));
    try {
      await store.appendMessages('run-1', [{ seq: 0, message: 'secret goal' }]);
      expect(modesUnder(home)).toEqual({ '.': '0700', 'warden.db': '0600', 'warden.db-wal': '0600', 'warden.db-shm': '0600' });
    } finally {
      await store.close();
    }
  });

  test('a recorded eval case, in a new cases directory (writeGoldenCase)', () => {
    const golden = readGoldenCase(path.join(__dirname, '..', '..', 'evals', 'refund-large-approved.json'));
    const dir = path.join(tmp, 'evals');
    writeGoldenCase(path.join(dir, 'refund.json'), golden);
    expect(modesUnder(dir)).toEqual({ '.': '0700', 'refund.json': '0600' });
  });

  test("the dev server's temporal.db (startDevServer with a dbFile)", async () => {
    const home = path.join(tmp, '.warden');
    const dbFile = path.join(home, 'temporal.db');
    const server = await startDevServer({ dbFile, headless: true, log: () => {} });
    try {
      expect(existsSync(dbFile)).toBe(true);
      const modes = modesUnder(home);
      expect(modes['.']).toBe('0700');
      for (const [name, mode] of Object.entries(modes)) if (name !== '.') expect([name, mode]).toEqual([name, '0600']);
    } finally {
      await server.stop();
    }
  }, 120_000);
});

describe("an existing Warden home that is open to others (as earlier versions made it)", () => {
  test('is narrowed to 0700, and the narrowing is told', () => {
    const home = path.join(tmp, '.warden');
    ensureWardenHome(home, () => {});
    chmodSync(home, 0o755);
    const notices: string[] = [];
    expect(ensureWardenHome(home, (m) => notices.push(m))).toBe(0o755);
    expect(modeOf(home)).toBe('0700');
    expect(notices).toEqual([`${home} was mode 0755, open to group or others; narrowed it to 0700 (it holds keys, passwords and run data)`]);
    // Already private: nothing to say.
    expect(ensureWardenHome(home, (m) => notices.push(m))).toBeNull();
    expect(notices).toHaveLength(1);
  });
});
