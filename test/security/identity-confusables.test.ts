/**
 * Identities that look alike are one person wherever being one person takes a right away
 * (four-eyes, one vote per person) and are never one person where it would give one (eligibility,
 * what a key may assert). Checked without a server through the functions the workflow and the
 * worker call: `authorizeDecision` (the worker's check of a signed decision), then `judgeDecision`
 * (the workflow's).
 */
import { DecisionSigner } from '../../src/approvals/signing-keys';
import {
  KeyringError,
  authorizeDecision,
  generateSigningKey,
  identityKey,
  isEligible,
  judgeDecision,
  normalizeIdentity,
  parseKeyring,
  sameIdentity,
  type ApprovalState,
  type DecisionClaims,
  type Keyring,
  type SignedDecision,
} from '../../src/governance';

const NOW = Date.now();
/** "alice" with a Cyrillic а (U+0430) where the Latin a should be. */
const CYRILLIC_ALICE = '\u0430lice';

const aliceKey = { keyId: 'cli-alice', ...generateSigningKey() };
const webKey = { keyId: 'web-inbox', ...generateSigningKey() };
const lookalikeKey = { keyId: 'cli-lookalike', ...generateSigningKey() };
const keyring: Keyring = parseKeyring(
  {
    'cli-alice': { publicKey: aliceKey.publicKey, channel: 'cli', people: { alice: ['finance'] } },
    'cli-lookalike': { publicKey: lookalikeKey.publicKey, channel: 'cli', people: { [CYRILLIC_ALICE]: ['finance'] } },
    'web-inbox': { publicKey: webKey.publicKey, channel: 'web', people: '*' },
  },
  'test keyring',
);

function pending(over: Partial<ApprovalState> = {}): ApprovalState {
  return {
    approvalId: 'apr_1',
    runId: 'warden/a/1',
    callId: 'c1',
    tool: 'transfer',
    args: {},
    ruleId: 'r',
    reason: 'money',
    policyVersion: 'pv_1',
    approvers: ['user:alice', 'group:finance'],
    quorum: 1,
    votes: [],
    requester: 'alice',
    createdAt: new Date(NOW - 1000).toISOString(),
    expiresAt: new Date(NOW + 60_000).toISOString(),
    escalated: false,
    state: 'pending',
    ...over,
  };
}

function signed(key: SigningKey, claims: Partial<DecisionClaims>): SignedDecision {
  return new DecisionSigner(key).sign({ approvalId: 'apr_1', runId: 'warden/a/1', decision: 'approve', approver: 'alice', groups: [], channel: 'cli', ...claims });
}
type SigningKey = typeof aliceKey;

/** What the run makes of a decision signed by `key` for `approver`: the worker's check, then the workflow's. */
function decide(approval: ApprovalState, key: SigningKey, approver: string, groups: string[], channel = 'web') {
  const auth = authorizeDecision(signed(key, { approver, groups, channel }), keyring, NOW);
  if (!auth.ok) return { verdict: 'refused' as const, reason: auth.reason };
  return judgeDecision(approval, { kind: 'approve', approvalId: approval.approvalId, approver }, { identity: auth.identity, claims: auth.claims }, NOW);
}

describe('look-alike spellings of one name fold to one comparison key', () => {
  test.each([
    ['Cyrillic а (U+0430)', CYRILLIC_ALICE],
    ['Cyrillic і (U+0456)', 'al\u0456ce'],
    ['Cyrillic с (U+0441) and е (U+0435)', 'ali\u0441\u0435'],
    ['Latin alpha ɑ (U+0251)', '\u0251lice'],
    ['Greek capital Α (U+0391), case-folded', '\u0391LICE'],
    ['mathematical bold (NFKC)', '\u{1d41a}\u{1d425}\u{1d422}\u{1d41c}\u{1d41e}'],
  ])('%s', (_what, spelling) => {
    expect(identityKey(spelling)).toBe(identityKey('alice'));
    expect(sameIdentity(spelling, 'alice')).toBe(true);
  });

  test('different names keep different keys, and the displayed identity keeps its own letters', () => {
    expect(identityKey('alice')).not.toBe(identityKey('alicia'));
    expect(identityKey('bob')).not.toBe(identityKey('rob'));
    // Only comparison folds: what is shown and recorded is the NFKC, case-folded spelling.
    expect(normalizeIdentity(CYRILLIC_ALICE)).toBe(CYRILLIC_ALICE);
    expect(normalizeIdentity('Alice')).toBe('alice');
  });
});

describe('a look-alike of the requester is the requester (four-eyes)', () => {
  test('an approval signed as "аlice" (Cyrillic а) on alice\'s run is refused as the requester\'s own', () => {
    const j = decide(pending(), webKey, CYRILLIC_ALICE, ['finance']);
    expect(j).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('four-eyes') as string });
  });

  test('a requester spelled with a look-alike cannot approve as plain alice either', () => {
    const j = decide(pending({ requester: CYRILLIC_ALICE }), aliceKey, 'alice', [], 'cli');
    expect(j).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('four-eyes') as string });
  });
});

describe('a look-alike does not count as someone else', () => {
  test('with a quorum of two, "alice" and "аlice" are one vote', () => {
    const first = decide(pending({ requester: 'carol', quorum: 2 }), aliceKey, 'alice', [], 'cli');
    if (first.verdict !== 'accepted') throw new Error(`alice's vote was refused: ${first.reason}`);
    expect(first.settled).toBe(false);
    const second = decide(first.approval, webKey, CYRILLIC_ALICE, ['finance']);
    expect(second).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('already approved') as string });
  });

  test('a look-alike of a listed approver is not that approver, and the refusal says why', () => {
    const j = decide(pending({ requester: 'carol', approvers: ['user:alice'] }), webKey, CYRILLIC_ALICE, []);
    expect(j).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('looks like alice') as string });
    expect(j).toMatchObject({ reason: expect.stringContaining('\\u0430lice') as string });
    expect(isEligible(CYRILLIC_ALICE, [], ['user:alice'])).toBe(false);
    expect(isEligible('alice', ['fin\u0430nce'], ['group:finance'])).toBe(false);
  });
});

describe('a key asserts only the spelling it was given', () => {
  test('alice\'s key may not assert "аlice", and the look-alike\'s key may not assert alice', () => {
    expect(authorizeDecision(signed(aliceKey, { approver: CYRILLIC_ALICE }), keyring, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('may not assert') as string });
    expect(authorizeDecision(signed(lookalikeKey, { approver: 'alice' }), keyring, NOW)).toMatchObject({ ok: false, reason: expect.stringContaining('may not assert') as string });
    expect(authorizeDecision(signed(aliceKey, { approver: 'alice' }), keyring, NOW)).toMatchObject({ ok: true, identity: { id: 'alice' } });
  });

  test('a directory that lists two look-alike people is refused, naming the key and both spellings', () => {
    const doc = { 'cli-desk': { publicKey: aliceKey.publicKey, channel: 'cli', people: { alice: ['finance'], [CYRILLIC_ALICE]: ['admins'] } } };
    expect(() => parseKeyring(doc, 'keys.json')).toThrow(KeyringError);
    expect(() => parseKeyring(doc, 'keys.json')).toThrow(/keys\.json: key "cli-desk" lists alice and \\u0430lice/);
  });
});
