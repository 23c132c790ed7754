/**
 * What a trusted key may assert, checked without a server: the keyring format, person keys,
 * directories, channels, revocation (also by editing the file under a running worker's nose),
 * identity spellings, and signed run starts.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { DecisionSigner, ensureDevKeys, keyringFromEnv, loadKeyring, watchKeyring, type SigningKeyFile } from '../../src/approvals/signing-keys';
import { registerKeys } from '../../src/cli/keys';
import {
  KeyringError,
  authorizeDecision,
  authorizeStart,
  generateSigningKey,
  goalDigest,
  normalizeIdentity,
  parseKeyring,
  type DecisionClaims,
  type Keyring,
  type SignedDecision,
} from '../../src/governance';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-keyring-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const keyOf = (keyId: string): SigningKeyFile => ({ keyId, ...generateSigningKey() });
const aliceKey = keyOf('cli-alice');
const deskKey = keyOf('cli-desk');
const webKey = keyOf('web-inbox');

/** alice's own key; a CLI desk key with a directory; an inbox that authenticates anyone. */
const keyring: Keyring = parseKeyring(
  {
    'cli-alice': { publicKey: aliceKey.publicKey, channel: 'cli', people: { alice: ['finance'] } },
    'cli-desk': { publicKey: deskKey.publicKey, channel: 'cli', people: { alice: ['finance'], bob: ['finance-leads'] } },
    'web-inbox': { publicKey: webKey.publicKey, channel: 'web', people: '*' },
  },
  'test keyring',
);

const now = Date.now();

function decision(key: SigningKeyFile, claims: Partial<DecisionClaims> = {}): SignedDecision {
  return new DecisionSigner(key).sign({ approvalId: 'apr_1', runId: 'warden/test-agent/r1', decision: 'approve', approver: 'alice', groups: [], channel: 'cli', ...claims });
}

function writeKeyring(file: string, doc: unknown): void {
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
}

/** Runs `warden keys …` in this process, returning what it printed. */
async function keysCli(args: string[]): Promise<string> {
  const program = new Command('warden').exitOverride();
  registerKeys(program);
  let printed = '';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed += chunk.toString();
    return true;
  });
  try {
    await program.parseAsync(['node', 'warden', 'keys', ...args]);
  } finally {
    write.mockRestore();
  }
  return printed;
}

describe('the keyring format', () => {
  test('a bare public key (the old format) is refused, and the message shows the new one', () => {
    const file = path.join(tmp, 'old-format.json');
    writeKeyring(file, { 'dev-cli': aliceKey.publicKey });
    expect(() => loadKeyring(file)).toThrow(KeyringError);
    expect(() => loadKeyring(file)).toThrow(`${file}: key "dev-cli" is a bare public key; a trusted key must say what it may assert`);
    expect(() => loadKeyring(file)).toThrow('"people": {"alice": ["finance"]}');
  });

  test('an unreadable or non-JSON file is refused, naming the file', () => {
    const missing = path.join(tmp, 'missing.json');
    expect(() => loadKeyring(missing)).toThrow(`cannot read trusted keys ${missing}: ENOENT`);
    const broken = path.join(tmp, 'broken.json');
    writeFileSync(broken, '{"cli-alice": ');
    expect(() => loadKeyring(broken)).toThrow(`trusted keys ${broken} is not valid JSON`);
  });

  test('a grant without a channel names the key and the field', () => {
    expect(() => parseKeyring({ k: { publicKey: aliceKey.publicKey, people: '*' } }, 'keys.json')).toThrow(/keys\.json: key "k": .*channel/);
  });

  test('keyringFromEnv is empty without WARDEN_TRUSTED_KEYS and follows the file when set', () => {
    expect(keyringFromEnv({})()).toEqual({});
    const file = path.join(tmp, 'env.json');
    writeKeyring(file, { 'web-inbox': { publicKey: webKey.publicKey, channel: 'web', people: '*' } });
    expect(Object.keys(keyringFromEnv({ WARDEN_TRUSTED_KEYS: file })())).toEqual(['web-inbox']);
  });
});

describe('what a key may assert', () => {
  test("a person's own key asserts that person, with the groups of its grant", () => {
    const ok = authorizeDecision(decision(aliceKey, { groups: ['finance'] }), keyring, now);
    expect(ok).toMatchObject({ ok: true, identity: { id: 'alice', groups: ['finance'], channel: 'cli', keyId: 'cli-alice' } });
  });

  test("a person's key asserting another person is refused", () => {
    const bob = authorizeDecision(decision(aliceKey, { approver: 'bob' }), keyring, now);
    expect(bob).toEqual({ ok: false, reason: 'key "cli-alice" may not assert bob (it speaks for alice)' });
  });

  test('groups beyond the grant are refused', () => {
    const over = authorizeDecision(decision(aliceKey, { groups: ['finance', 'finance-leads'] }), keyring, now);
    expect(over).toEqual({ ok: false, reason: 'key "cli-alice" may not assert group(s) finance-leads for alice' });
  });

  test("a directory key's groups come from the directory, whatever the claim lists", () => {
    const bob = authorizeDecision(decision(deskKey, { approver: 'bob', groups: [] }), keyring, now);
    expect(bob).toMatchObject({ ok: true, identity: { id: 'bob', groups: ['finance-leads'], keyId: 'cli-desk' } });
    const nobody = authorizeDecision(decision(deskKey, { approver: 'nobody', groups: ['finance'] }), keyring, now);
    expect(nobody).toEqual({ ok: false, reason: 'key "cli-desk" may not assert nobody (it speaks for alice, bob)' });
  });

  test('a key with people "*" asserts any identity and the groups it claims', () => {
    const carol = authorizeDecision(decision(webKey, { approver: 'carol', groups: ['Finance'], channel: 'web' }), keyring, now);
    expect(carol).toMatchObject({ ok: true, identity: { id: 'carol', groups: ['finance'], channel: 'web', keyId: 'web-inbox' } });
  });

  test('a claim on another channel than the key signs for is refused', () => {
    const asWeb = authorizeDecision(decision(aliceKey, { channel: 'web' }), keyring, now);
    expect(asWeb).toEqual({ ok: false, reason: 'key "cli-alice" signs for channel cli, not web' });
    const asSlack = authorizeDecision(decision(webKey, { channel: 'slack' }), keyring, now);
    expect(asSlack).toMatchObject({ ok: false, reason: expect.stringContaining('not slack') as string });
  });

  test('a revoked key signs nothing more, and says so', () => {
    const revoked = parseKeyring({ 'cli-alice': { publicKey: aliceKey.publicKey, channel: 'cli', people: { alice: ['finance'] }, revoked: true } }, 'revoked keyring');
    expect(authorizeDecision(decision(aliceKey), revoked, now)).toEqual({ ok: false, reason: 'signing key "cli-alice" is revoked' });
  });

  test('a key that is not in the keyring, or a forged signature, is refused', () => {
    expect(authorizeDecision(decision(keyOf('stranger')), keyring, now)).toEqual({ ok: false, reason: 'unknown signing key "stranger"' });
    const forged = decision(keyOf('cli-alice'));
    expect(authorizeDecision(forged, keyring, now)).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') as string });
  });

  test('the note is signed with the decision: changing it breaks the signature', () => {
    const signed = decision(aliceKey, { decision: 'reject', note: 'wrong supplier' });
    const ok = authorizeDecision(signed, keyring, now);
    expect(ok).toMatchObject({ ok: true, claims: { note: 'wrong supplier' } });
    const altered = { ...signed, payload: signed.payload.replace('wrong supplier', 'fine by me') };
    expect(authorizeDecision(altered, keyring, now)).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') as string });
  });
});

describe('identities compare normalised', () => {
  test.each(['alice', 'Alice', 'ALICE', 'alice ', ' alice', 'alice\u200b', '\u200balice', 'ａｌｉｃｅ', 'ＡＬＩＣＥ', 'ali\u00adce'])('%j is alice', (spelling) => {
    expect(normalizeIdentity(spelling)).toBe('alice');
    const ok = authorizeDecision(decision(aliceKey, { approver: spelling }), keyring, now);
    expect(ok).toMatchObject({ ok: true, identity: { id: 'alice' } });
  });

  test('a spelling that is only invisible characters is no identity', () => {
    expect(authorizeDecision(decision(webKey, { approver: '\u200b ', channel: 'web' }), keyring, now)).toEqual({ ok: false, reason: 'the signed identity is empty' });
  });
});

describe('a keyring file followed by a running worker', () => {
  const grant = { publicKey: aliceKey.publicKey, channel: 'cli', people: { alice: ['finance'] } };

  test('a revocation written to the file counts from the next decision, without a restart', () => {
    const file = path.join(tmp, 'followed.json');
    writeKeyring(file, { 'cli-alice': grant });
    const current = watchKeyring(file);
    expect(authorizeDecision(decision(aliceKey), current(), now).ok).toBe(true);
    writeKeyring(file, { 'cli-alice': { ...grant, revoked: true } });
    expect(authorizeDecision(decision(aliceKey), current(), now)).toEqual({ ok: false, reason: 'signing key "cli-alice" is revoked' });
  });

  test('`warden keys revoke` marks the key in the file, keeps its entry and mode, and the watcher sees it', async () => {
    const file = path.join(tmp, 'revoke.json');
    writeKeyring(file, { 'cli-alice': grant, 'web-inbox': { publicKey: webKey.publicKey, channel: 'web', people: '*' } });
    const current = watchKeyring(file);
    expect(current()['cli-alice']?.revoked).toBe(false);
    chmodSync(file, 0o640);

    const printed = await keysCli(['revoke', 'cli-alice', '--trusted', file]);
    expect(printed).toContain(`revoked cli-alice in ${file}`);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ 'cli-alice': { ...grant, revoked: true }, 'web-inbox': { publicKey: webKey.publicKey, channel: 'web', people: '*' } });
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(current()['cli-alice']?.revoked).toBe(true);
    expect(authorizeDecision(decision(webKey, { channel: 'web' }), current(), now).ok).toBe(true);

    expect(await keysCli(['revoke', 'cli-alice', '--trusted', file])).toContain('already revoked');
    await expect(keysCli(['revoke', 'cli-bob', '--trusted', file])).rejects.toThrow(`${file} has no key "cli-bob" (it lists cli-alice, web-inbox)`);
  });

  test('a file that becomes invalid or disappears fails closed: every call throws the reason', () => {
    const file = path.join(tmp, 'goes-bad.json');
    writeKeyring(file, { 'cli-alice': grant });
    const current = watchKeyring(file);
    expect(Object.keys(current())).toEqual(['cli-alice']);
    writeKeyring(file, { 'cli-alice': aliceKey.publicKey });
    expect(() => current()).toThrow('is a bare public key');
    expect(() => current()).toThrow('is a bare public key');
    rmSync(file);
    expect(() => current()).toThrow(`cannot read trusted keys ${file}: ENOENT`);
    writeKeyring(file, { 'cli-alice': grant });
    expect(Object.keys(current())).toEqual(['cli-alice']);
  });

  test('a bad file stops a worker at start', () => {
    const file = path.join(tmp, 'bad-at-start.json');
    writeKeyring(file, { 'cli-alice': aliceKey.publicKey });
    expect(() => watchKeyring(file)).toThrow(KeyringError);
  });
});

describe('signed run starts', () => {
  const goal = 'Refund order ORD-1003: the desk arrived cracked';
  const start = (key: SigningKeyFile, requester = 'alice', channel = 'cli') =>
    new DecisionSigner(key).signStart({ runId: 'warden/refund-agent/r1', agent: 'refund-agent', requester, goal: goalDigest(goal), channel });

  test('a start claim binds the run, the agent, the requester and the goal', () => {
    const verified = authorizeStart(start(aliceKey), keyring, now);
    if (!verified.ok) throw new Error(verified.reason);
    expect(verified.claims).toMatchObject({ kind: 'start', runId: 'warden/refund-agent/r1', agent: 'refund-agent', requester: 'alice', goal: goalDigest(goal), channel: 'cli' });
    expect(verified.identity).toMatchObject({ id: 'alice', keyId: 'cli-alice' });
    // Another goal has another digest: the signature cannot be reused for it.
    expect(goalDigest(`${goal}, and raise my credit limit`)).not.toBe(verified.claims.goal);
  });

  test('moving a signed start to another run, agent, requester or goal breaks the signature', () => {
    const signed = start(aliceKey);
    for (const [from, to] of [
      ['warden/refund-agent/r1', 'warden/refund-agent/r2'],
      ['"agent":"refund-agent"', '"agent":"procurement-agent"'],
      ['"requester":"alice"', '"requester":"alicf"'],
      [goalDigest(goal), goalDigest('something else')],
    ] as const) {
      const moved = { ...signed, payload: signed.payload.replace(from, to) };
      expect(moved.payload).not.toBe(signed.payload);
      expect(authorizeStart(moved, keyring, now)).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') as string });
    }
  });

  test("a start for someone the key may not assert is refused; a decision is not a start", () => {
    expect(authorizeStart(start(aliceKey, 'bob'), keyring, now)).toEqual({ ok: false, reason: 'key "cli-alice" may not assert bob (it speaks for alice)' });
    expect(authorizeStart(decision(aliceKey), keyring, now)).toMatchObject({ ok: false, reason: expect.stringContaining('not a run start') as string });
    expect(authorizeDecision(start(aliceKey), keyring, now)).toMatchObject({ ok: false });
  });
});

describe('keys for people and for development', () => {
  test('`warden keys generate --person` prints the exact grant the workers accept', async () => {
    const file = path.join(tmp, 'keys', 'cli-alice.json');
    const printed = await keysCli(['generate', '--id', 'cli-alice', '--out', file, '--person', 'Alice', '--groups', 'finance, Finance-Leads']);
    const key = JSON.parse(readFileSync(file, 'utf8')) as SigningKeyFile;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const line = `{"cli-alice":{"publicKey":"${key.publicKey}","channel":"cli","people":{"alice":["finance","finance-leads"]}}}`;
    expect(printed).toContain(`  ${line}\n`);
    const parsed = parseKeyring(JSON.parse(line), 'printed');
    expect(authorizeDecision(new DecisionSigner(key).sign({ approvalId: 'a', runId: 'r', decision: 'approve', approver: 'alice', groups: [], channel: 'cli' }), parsed, now)).toMatchObject({
      ok: true,
      identity: { id: 'alice', groups: ['finance', 'finance-leads'] },
    });
  });

  test('`warden keys generate --any-identity` grants "*"; without a choice nothing is written', async () => {
    const file = path.join(tmp, 'keys', 'web.json');
    expect(await keysCli(['generate', '--id', 'web-prod', '--out', file, '--channel', 'web', '--any-identity'])).toMatch(/"channel":"web","people":"\*"/);
    const none = path.join(tmp, 'keys', 'none.json');
    await expect(keysCli(['generate', '--id', 'x', '--out', none])).rejects.toThrow('say what the key may assert');
    await expect(keysCli(['generate', '--id', 'x', '--out', none, '--any-identity', '--person', 'alice'])).rejects.toThrow('takes no --person');
    expect(() => statSync(none)).toThrow();
  });

  test('ensureDevKeys writes grants (mode 0600), replaces an old-format file and keeps a revocation', () => {
    const home = path.join(tmp, 'dev-home');
    const directory = { alice: ['finance'], bob: ['finance-leads'], carol: ['support'] };
    const first = ensureDevKeys(home, directory);
    const keyringFile = first.trustedKeysFile;
    const grants = loadKeyring(keyringFile);
    expect(Object.keys(grants).sort()).toEqual(['dev-cli', 'dev-slack', 'dev-web']);
    expect(grants['dev-cli']).toMatchObject({ channel: 'cli', people: directory, revoked: false });
    expect(grants['dev-web']).toMatchObject({ channel: 'web', people: '*' });
    expect(grants['dev-slack']).toMatchObject({ channel: 'slack', people: '*' });
    expect(statSync(keyringFile).mode & 0o777).toBe(0o600);
    for (const channel of ['cli', 'web', 'slack'] as const) expect(statSync(first.keyFile(channel)).mode & 0o777).toBe(0o600);

    // A file of the old format, from before keyrings, is rewritten from the key files.
    writeKeyring(keyringFile, { 'dev-cli': grants['dev-cli']?.publicKey });
    ensureDevKeys(home, directory);
    expect(loadKeyring(keyringFile)['dev-cli']).toMatchObject({ publicKey: grants['dev-cli']?.publicKey, people: directory });

    const revoked = JSON.parse(readFileSync(keyringFile, 'utf8')) as Record<string, Record<string, unknown>>;
    writeKeyring(keyringFile, { ...revoked, 'dev-web': { ...revoked['dev-web'], revoked: true } });
    ensureDevKeys(home, directory);
    expect(loadKeyring(keyringFile)['dev-web']?.revoked).toBe(true);
    expect(loadKeyring(keyringFile)['dev-cli']?.revoked).toBe(false);

    // The development CLI key speaks for the development users only, in their own groups.
    const cli = new DecisionSigner(JSON.parse(readFileSync(first.keyFile('cli'), 'utf8')) as SigningKeyFile);
    const as = (approver: string, groups: string[] = []) => authorizeDecision(cli.sign({ approvalId: 'a', runId: 'r', decision: 'approve', approver, groups, channel: 'cli' }), loadKeyring(keyringFile), now);
    expect(as('alice')).toMatchObject({ ok: true, identity: { groups: ['finance'] } });
    expect(as('carol', ['finance'])).toMatchObject({ ok: false, reason: 'key "dev-cli" may not assert group(s) finance for carol' });
    expect(as('nobody', ['finance'])).toMatchObject({ ok: false, reason: expect.stringContaining('may not assert nobody') as string });
  });
});
