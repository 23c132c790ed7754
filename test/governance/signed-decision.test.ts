import { generateSigningKey, publicKeyOf, signDecision, verifySignedDecision, type DecisionClaims } from '../../src/governance';

// RFC 8032, section 7.1, test 1: the raw key encoding Warden's key files and keyrings use.
const SECRET = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const PUBLIC = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const claims: DecisionClaims = { approvalId: 'apr_1', runId: 'warden/a/1', decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web', issuedAt: '2026-12-02T12:00:00.000Z' };
const now = Date.parse(claims.issuedAt) + 1000;
// The signature the earlier pure-JS implementation (@noble/curves) made for these claims with this key:
// Ed25519 is deterministic, so decisions signed before the change verify after it, and the reverse.
const SIGNED_BEFORE = '9b9c166a23f60336a7ec9eea7f12eb0c0bb2310c1fdb8329a77e4b72b58769b146f5e30a80140cf693b5b08cc0586d355ac7f0b74ae09ec6c148d74d903cf300';

test('keys are the raw RFC 8032 encoding: the public key of a private key', () => {
  expect(publicKeyOf(SECRET)).toBe(PUBLIC);
});

test('a decision signs to the same bytes as before, and verifies', () => {
  const signed = signDecision(claims, SECRET, 'web');
  expect(signed.payload).toBe('{"approvalId":"apr_1","approver":"alice","channel":"web","decision":"approve","groups":["finance"],"issuedAt":"2026-12-02T12:00:00.000Z","runId":"warden/a/1"}');
  expect(signed.signature).toBe(SIGNED_BEFORE);
  expect(verifySignedDecision(signed, { web: PUBLIC }, now)).toEqual({ ok: true, claims });
});

test('an altered payload, an altered signature, another key or malformed hex do not verify', () => {
  const signed = signDecision(claims, SECRET, 'web');
  const other = generateSigningKey();
  const forged = (s: object, keys: Record<string, string> = { web: PUBLIC }) => verifySignedDecision({ ...signed, ...s }, keys, now);
  expect(forged({ payload: signed.payload.replace('alice', 'mallory') })).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') });
  expect(forged({ signature: (signed.signature.startsWith('0') ? '1' : '0') + signed.signature.slice(1) })).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') });
  expect(forged({}, { web: other.publicKey })).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') });
  expect(forged({ signature: 'zz' + signed.signature.slice(2) })).toMatchObject({ ok: false });
  expect(forged({ signature: signed.signature.slice(2) })).toMatchObject({ ok: false });
  expect(forged({}, { web: 'not-a-key' })).toMatchObject({ ok: false });
  expect(() => signDecision(claims, 'not-a-key', 'web')).toThrow('64 hex characters');
});

test('a new key pair signs what its public key verifies', () => {
  const pair = generateSigningKey();
  expect(pair.privateKey).toMatch(/^[0-9a-f]{64}$/);
  expect(publicKeyOf(pair.privateKey)).toBe(pair.publicKey);
  expect(verifySignedDecision(signDecision(claims, pair.privateKey, 'k'), { k: pair.publicKey }, now).ok).toBe(true);
});

test('keys imported once are told apart: each signature verifies under its own key only, also past the bound', () => {
  // More keys than the worker keeps imported (64), used twice in turn: the second pass finds the first keys evicted.
  const pairs = Array.from({ length: 70 }, () => generateSigningKey());
  for (let pass = 0; pass < 2; pass++) {
    pairs.forEach((pair, i) => {
      const signed = signDecision(claims, pair.privateKey, 'k');
      const next = pairs[(i + 1) % pairs.length]?.publicKey ?? '';
      expect(verifySignedDecision(signed, { k: pair.publicKey }, now).ok).toBe(true);
      expect(verifySignedDecision(signed, { k: next }, now)).toMatchObject({ ok: false, reason: expect.stringContaining('forged or altered') });
    });
  }
  // The same key in upper case is the same key.
  expect(verifySignedDecision(signDecision(claims, SECRET.toUpperCase(), 'web'), { web: PUBLIC.toUpperCase() }, now)).toEqual({ ok: true, claims });
});
