/**
 * `warden keys payload init|rotate` and `warden keys trust`, run as the real CLI in child
 * processes: a payload key file made and rotated without openssl, a run encrypted before the
 * rotation still read after it, and a grant added to a trusted-keys file without editing JSON.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EncryptionCodec, loadPayloadKeys } from '../src/codec';
import { loadKeyring } from '../src/approvals/signing-keys';
import { runCli } from './fixtures/run-cli';
import { createTestBed, settings, testPolicy } from './helpers';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-keys-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cliEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const { address, namespace } = settings();
  const { WARDEN_PAYLOAD_KEYS: _keys, WARDEN_TRUSTED_KEYS: _trusted, ...env } = process.env;
  return { ...env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_HOME: path.join(tmp, 'home'), ...extra };
};
const warden = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, cliEnv(extra), 90_000);

describe('warden keys payload', () => {
  const file = path.join(tmp, 'secrets', 'payload.json');

  test('init writes a fresh key file, 0600, and refuses to overwrite it', async () => {
    const made = await warden(['keys', 'payload', 'init', file, '--id', 'pk-1']);
    expect(made).toMatchObject({ code: 0 });
    expect(made.stdout).toContain(`wrote ${file} (mode 0600) with key pk-1`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const keys = loadPayloadKeys(file);
    expect(keys.current).toBe('pk-1');
    expect(keys.keys['pk-1']).toMatch(/^[0-9a-f]{64}$/);

    const again = await warden(['keys', 'payload', 'init', file]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('exists already; it is not overwritten');
    expect(loadPayloadKeys(file)).toEqual(keys);

    const generated = path.join(tmp, 'generated.json');
    expect((await warden(['keys', 'payload', 'init', generated])).code).toBe(0);
    expect(loadPayloadKeys(generated).current).toMatch(/^key-\d{4}-\d\d-\d\d-[0-9a-f]{6}$/);
    const badId = await warden(['keys', 'payload', 'init', path.join(tmp, 'bad-id.json'), '--id', 'has space']);
    expect(badId.code).not.toBe(0);
    expect(badId.stderr).toContain('current');
  });

  test('a run encrypted before a rotation is still read after it; new payloads use the new key', async () => {
    const bed = await createTestBed({ payloadCodec: new EncryptionCodec(loadPayloadKeys(file)) });
    try {
      const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'before the rotation', requester: 'carol', policy: testPolicy(), script: [{ text: 'written with pk-1' }] });
      expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'written with pk-1' });

      const rotated = await warden(['keys', 'payload', 'rotate', file, '--id', 'pk-2']);
      expect(rotated).toMatchObject({ code: 0 });
      expect(rotated.stdout).toContain('new payloads are encrypted with pk-2; pk-1 still decrypt');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const keys = loadPayloadKeys(file);
      expect(keys.current).toBe('pk-2');
      expect(Object.keys(keys.keys).sort()).toEqual(['pk-1', 'pk-2']);

      // The CLI reads the run with the rotated file: its history and the query answer are pk-1's.
      const status = await warden(['status', runId, '--json'], { WARDEN_PAYLOAD_KEYS: file, WARDEN_TASK_QUEUE: bed.taskQueue });
      expect(status).toMatchObject({ code: 0 });
      expect(JSON.parse(status.stdout)).toMatchObject({ outcome: { status: 'completed', text: 'written with pk-1' } });

      const codec = new EncryptionCodec(keys);
      const [encoded] = await codec.encode([{ metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('"after"') }]);
      expect(new TextDecoder().decode(encoded?.metadata?.['encryption-key-id'] ?? new Uint8Array())).toBe('pk-2');
    } finally {
      await bed.close();
    }
  });

  test('rotate refuses a key id the file has, and a file open to others', async () => {
    const before = readFileSync(file, 'utf8');
    const taken = await warden(['keys', 'payload', 'rotate', file, '--id', 'pk-1']);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('has a key "pk-1" already');
    expect(readFileSync(file, 'utf8')).toBe(before);

    const loose = path.join(tmp, 'loose.json');
    writeFileSync(loose, before);
    chmodSync(loose, 0o644);
    const refused = await warden(['keys', 'payload', 'rotate', loose]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('is open to group or others');
    expect((await warden(['keys', 'payload', 'rotate', path.join(tmp, 'missing.json')])).stderr).toContain('cannot read payload key file');
  });
});

describe('warden keys trust', () => {
  const trusted = path.join(tmp, 'trusted-keys.json');

  async function publicKeyOf(id: string): Promise<string> {
    const made = await warden(['keys', 'generate', '--id', id, '--out', path.join(tmp, `${id}.key`), '--person', 'alice']);
    const key = /public key: ([0-9a-f]{64})/.exec(made.stdout)?.[1];
    if (!key) throw new Error(`no public key in: ${made.stdout}${made.stderr}`);
    return key;
  }

  test('adds a grant (creating the file), which workers then trust; refuses a duplicate id or key', async () => {
    const alice = await publicKeyOf('cli-alice');
    const first = await warden(['keys', 'trust', trusted, '--id', 'cli-alice', '--public-key', alice, '--person', 'alice', '--groups', 'finance', '--roles', 'operator']);
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout).toContain('trusted cli-alice in');
    expect(loadKeyring(trusted)).toMatchObject({ 'cli-alice': { publicKey: alice, channel: 'cli', people: { alice: ['finance'] }, roles: ['operator'] } });

    const web = await publicKeyOf('web-inbox');
    expect((await warden(['keys', 'trust', trusted, '--id', 'web-inbox', '--public-key', web, '--channel', 'web', '--any-identity'])).code).toBe(0);
    expect(Object.keys(loadKeyring(trusted))).toEqual(['cli-alice', 'web-inbox']);

    const before = readFileSync(trusted, 'utf8');
    const sameId = await warden(['keys', 'trust', trusted, '--id', 'cli-alice', '--public-key', web, '--person', 'alice']);
    expect(sameId.code).not.toBe(0);
    expect(sameId.stderr).toContain('has a key "cli-alice" already');
    const sameKey = await warden(['keys', 'trust', trusted, '--id', 'cli-alice-2', '--public-key', alice, '--person', 'alice']);
    expect(sameKey.code).not.toBe(0);
    expect(sameKey.stderr).toContain('trusts this public key already, as "cli-alice"');
    expect(readFileSync(trusted, 'utf8')).toBe(before);
  });

  test('bad input is refused before the file is touched', async () => {
    const before = readFileSync(trusted, 'utf8');
    const badKey = await warden(['keys', 'trust', trusted, '--id', 'x', '--public-key', 'abc', '--person', 'bob']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('publicKey');
    const nobody = await warden(['keys', 'trust', trusted, '--id', 'x', '--public-key', 'ab'.repeat(32)]);
    expect(nobody.code).toBe(2);
    expect(nobody.stderr).toContain('say what the key may assert');
    const role = await warden(['keys', 'trust', trusted, '--id', 'x', '--public-key', 'ab'.repeat(32), '--person', 'bob', '--roles', 'root']);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('unknown role(s) root');
    expect(readFileSync(trusted, 'utf8')).toBe(before);
  });
});
