/** `judgeDecision`, `precheckDecision` and `escalateApproval`: every rule about a decision, with no server. */
import { escalateApproval, judgeDecision, precheckDecision, sameRequirement, type ApprovalState, type DecisionAuthority, type DecisionInput } from '../../src/governance';

const NOW = Date.parse('2026-12-01T12:00:00Z');

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
    approvers: ['group:finance', 'user:dana'],
    quorum: 1,
    votes: [],
    requester: 'carol',
    createdAt: new Date(NOW - 1000).toISOString(),
    expiresAt: new Date(NOW + 60_000).toISOString(),
    escalated: false,
    state: 'pending',
    ...over,
  };
}

const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({ kind: 'approve', approvalId: 'apr_1', approver: 'alice', ...over });
const by = (id: string, groups: string[] = ['finance'], claims?: DecisionAuthority['claims']): DecisionAuthority => ({ identity: { id, groups, channel: 'web', keyId: 'k' }, ...(claims ? { claims } : {}) });
const claims = (over: Record<string, unknown> = {}) =>
  ({ approvalId: 'apr_1', runId: 'warden/a/1', decision: 'approve', approver: 'alice', groups: ['finance'], channel: 'web', issuedAt: new Date(NOW).toISOString(), ...over }) as DecisionAuthority['claims'];

describe('precheckDecision', () => {
  test('no such approval, already decided, past the deadline', () => {
    expect(precheckDecision(undefined, input(), NOW)).toContain('no approval apr_1');
    expect(precheckDecision(pending({ state: 'approved' }), input(), NOW)).toContain('already approved');
    expect(precheckDecision(pending({ expiresAt: new Date(NOW - 1).toISOString() }), input(), NOW)).toContain('decisions after the deadline do not count');
    expect(precheckDecision(pending(), input(), NOW)).toBeNull();
  });
});

describe('judgeDecision', () => {
  test('an eligible approval settles a quorum of one', () => {
    const j = judgeDecision(pending(), input(), by('alice'), NOW);
    expect(j).toMatchObject({ verdict: 'accepted', settled: true, approval: { state: 'approved', decidedBy: 'alice' } });
  });

  test('a rejection settles at once, with its reason', () => {
    const j = judgeDecision(pending(), input({ kind: 'reject', note: 'wrong account' }), by('alice'), NOW);
    expect(j).toMatchObject({ verdict: 'accepted', settled: true, approval: { state: 'rejected', note: 'wrong account' } });
  });

  test('four-eyes compares normalised identities', () => {
    for (const requester of ['Alice', ' alice', 'alice\u200b', 'ＡＬＩＣＥ']) {
      expect(judgeDecision(pending({ requester }), input(), by('alice'), NOW)).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('four-eyes') });
    }
  });

  test('eligibility by user and by group, compared normalised', () => {
    expect(judgeDecision(pending(), input({ approver: 'dana' }), by('dana', []), NOW).verdict).toBe('accepted');
    expect(judgeDecision(pending(), input({ approver: 'eve' }), by('eve', ['Finance ']), NOW).verdict).toBe('accepted');
    expect(judgeDecision(pending(), input({ approver: 'mallory' }), by('mallory', ['support']), NOW)).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('not among the approvers') });
  });

  test('quorum counts distinct people', () => {
    const first = judgeDecision(pending({ quorum: 2 }), input(), by('alice'), NOW);
    if (first.verdict !== 'accepted') throw new Error('first vote refused');
    expect(first.settled).toBe(false);
    expect(judgeDecision(first.approval, input(), by('alice'), NOW)).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('already approved') });
    expect(judgeDecision(first.approval, input({ approver: 'eve' }), by('eve'), NOW)).toMatchObject({ verdict: 'accepted', settled: true });
  });

  test('the deadline holds at decision time', () => {
    expect(judgeDecision(pending({ expiresAt: new Date(NOW - 1).toISOString() }), input(), by('alice'), NOW).verdict).toBe('refused');
  });

  test('signed claims must name this run, this approval, this kind, this approver and this note', () => {
    const refuse = (c: Record<string, unknown>, i: Partial<DecisionInput> = {}) => judgeDecision(pending(), input(i), by('alice', ['finance'], claims(c)), NOW);
    expect(refuse({ runId: 'other' })).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('for run other') });
    expect(refuse({ approvalId: 'apr_2' })).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('for approval apr_2') });
    expect(refuse({ decision: 'reject' })).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('says reject') });
    expect(refuse({ approver: 'bob' })).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('is by bob') });
    expect(refuse({}, { note: 'added later' })).toMatchObject({ verdict: 'refused', reason: expect.stringContaining('not the one that was signed') });
    expect(refuse({ note: 'ok' }, { note: 'ok' }).verdict).toBe('accepted');
  });

  test('the approval given is never mutated', () => {
    const approval = pending();
    judgeDecision(approval, input(), by('alice'), NOW);
    expect(approval).toEqual(pending());
  });
});

describe('escalateApproval', () => {
  test('hands over to the escalation approvers with a new deadline, keeping only their votes', () => {
    const voted = pending({
      quorum: 2,
      votes: [
        { approver: 'alice', groups: ['finance'], at: '', channel: 'web' },
        { approver: 'lee', groups: ['leads'], at: '', channel: 'web' },
      ],
    });
    const up = escalateApproval(voted, { approvers: ['group:leads'], timeout: '1h' }, NOW);
    expect(up).toMatchObject({ escalated: true, approvers: ['group:leads'], expiresAt: new Date(NOW + 3_600_000).toISOString() });
    expect(up.votes.map((v) => v.approver)).toEqual(['lee']);
  });
});

describe('sameRequirement', () => {
  test('same people and terms regardless of order; anything else differs', () => {
    const a = { approvers: ['group:x', 'user:y'], quorum: 1, timeout: '1h' };
    expect(sameRequirement(a, { ...a, approvers: ['user:y', 'group:x'] })).toBe(true);
    expect(sameRequirement(a, { ...a, quorum: 2 })).toBe(false);
    expect(sameRequirement(a, undefined)).toBe(false);
  });
});
