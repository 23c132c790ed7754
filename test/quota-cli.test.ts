/**
 * `warden quota list|show|reset` as people run them: the CLI in a child process, against a real
 * SQLite run store holding real reservations (booked with the store's own `reserveQuota`, as
 * workers book them). A reset is an operator command: refused without a key trusted with the
 * operator role, and recorded (signed, hash-chained) in the store when it happens. No Temporal.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSigningKey, loadKeyring } from '../src/approvals/signing-keys';
import { authorizeOperator, parsePolicy, verifyAuditChain } from '../src/governance';
import { counterKey, quotaWindowAt } from '../src/governance/quota';
import { createSqliteStore, type RunStore } from '../src/store';
import { runCli, type CliResult } from './fixtures/run-cli';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-quota-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const policies = path.join(tmp, 'policies');
const storeFile = path.join(tmp, 'store', 'warden.db');
const home = path.join(tmp, 'home');
const trusted = path.join(tmp, 'trusted-keys.json');
const olgaKey = path.join(tmp, 'keys', 'olga.json');
const ninaKey = path.join(tmp, 'keys', 'nina.json');

const policyDoc = {
  agent: 'refund-agent',
  tools: { issue_refund: {}, lookup_order: {} },
  rules: [{ id: 'all', decision: 'allow' }],
  quotas: [
    {
      id: 'refunds-per-day',
      description: 'Refunds per tenant per day',
      count: 'calls',
      tools: ['issue_refund'],
      scope: ['tenant'],
      window: { calendar: 'day', timeZone: 'UTC' },
      thresholds: [
        { above: 3, action: 'require_approval', reason: 'many refunds today', approval: { approvers: ['group:finance'] } },
        { above: 5, action: 'deny', reason: 'the daily refund limit' },
      ],
    },
    { id: 'refund-dollars', count: { sum: 'args.amount' }, tools: ['issue_refund'], window: { rolling: '24h' }, thresholds: [{ above: 1000, action: 'deny', reason: 'the refund budget' }] },
  ],
};
const policy = parsePolicy(policyDoc, 'test policy');
const [perDay, dollars] = policy.quotas ?? [];

/** Books one issue_refund call against both quotas, as a worker does: held, then committed once the call ran (unless `held`). */
async function refund(store: RunStore, runId: string, tenant: string, amount: number, held = false): Promise<void> {
  if (!perDay || !dollars) throw new Error('the policy has no quotas');
  const now = Date.now();
  const facts = { agent: 'refund-agent', tenant, requester: 'carol', tool: 'issue_refund' };
  const booking = (name: string, q: typeof perDay, value: number) => {
    const w = quotaWindowAt(q.window, now);
    return { quota: name, counter: counterKey(name, q.scope, facts), window: w.key, sinceMs: w.sinceMs, amount: value, thresholds: q.thresholds };
  };
  const result = await store.reserveQuota({
    runId,
    ref: 'call:1',
    tenant,
    nowMs: now,
    expiresAtMs: now + 3600_000,
    mode: 'reserve',
    approved: true,
    bookings: [booking('refund-agent/refunds-per-day', perDay, 1), booking('refund-agent/refund-dollars', dollars, amount)],
  });
  if (!result.ok) throw new Error(`booking refused: ${result.hit.reason}`);
  if (!held) await store.settleQuota(runId, { ref: 'call:1', from: 'held', to: 'committed' });
}

function warden(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: home, WARDEN_STORE: storeFile, ...extra };
  for (const name of ['TEMPORAL_ADDRESS', 'WARDEN_TRUSTED_KEYS', 'WARDEN_SIGNING_KEY']) if (!(name in extra)) delete env[name];
  return runCli(args, env);
}

interface Standing {
  name: string;
  limit: number | null;
  used: number;
  reserved: number;
  counters: { counter: string; used: number; reserved: number }[];
  top: { runId: string; tenant: string | null; amount: number }[];
  resets?: { by: string; tenant: string | null; reservations: number }[];
}

beforeAll(async () => {
  mkdirSync(policies, { recursive: true });
  writeFileSync(path.join(policies, 'refund-agent.yaml'), JSON.stringify(policyDoc));
  const olga = createSigningKey(olgaKey, 'cli-olga');
  const nina = createSigningKey(ninaKey, 'cli-nina');
  writeFileSync(
    trusted,
    JSON.stringify({
      [olga.keyId]: { publicKey: olga.publicKey, channel: 'cli', people: { olga: ['ops'] }, roles: ['operator'] },
      [nina.keyId]: { publicKey: nina.publicKey, channel: 'cli', people: { nina: ['finance'] } },
    }),
  );
  const store = createSqliteStore(storeFile);
  try {
    await refund(store, 'warden/refund-agent/a1', 'acme', 100);
    await refund(store, 'warden/refund-agent/a1b', 'acme', 50);
    await refund(store, 'warden/refund-agent/a2', 'acme', 200);
    await refund(store, 'warden/refund-agent/g1', 'globex', 30, true);
  } finally {
    await store.close();
  }
});

describe('warden quota', () => {
  test('list: every quota with its window, limit, used and reserved', async () => {
    const r = await warden(['quota', 'list', '--policies', policies]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/QUOTA\s+COUNTS\s+WINDOW\s+SCOPE\s+LIMIT\s+USED\s+RESERVED\s+COUNTERS/);
    expect(r.stdout).toMatch(/refund-agent\/refunds-per-day\s+calls\s+calendar day \(UTC\)\s+tenant\s+5\s+3\s+1\s+2/);
    expect(r.stdout).toMatch(/refund-agent\/refund-dollars\s+sum of args\.amount\s+rolling 24h\s+-\s+1000\s+350\s+30\s+1/);
    const json = JSON.parse((await warden(['quota', 'list', '--policies', policies, '--json'])).stdout) as Standing[];
    expect(json.map((s) => [s.name, s.limit, s.used, s.reserved])).toEqual([
      ['refund-agent/refunds-per-day', 5, 3, 1],
      ['refund-agent/refund-dollars', 1000, 350, 30],
    ]);
  });

  test('show: counters, limit and what is left, the top consumers; --tenant narrows to one tenant', async () => {
    const r = await warden(['quota', 'show', 'refunds-per-day', '--policies', policies]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('refund-agent/refunds-per-day: Refunds per tenant per day');
    expect(r.stdout).toContain('limit 5; thresholds: above 3 require_approval, above 5 deny');
    expect(r.stdout).toMatch(/tenant=acme\s+3\s+0\s+5\s+2/);
    expect(r.stdout).toMatch(/tenant=globex\s+0\s+1\s+5\s+4/);
    expect(r.stdout).toContain('top consumers:');

    const acme = JSON.parse((await warden(['quota', 'show', 'refund-agent/refund-dollars', '--policies', policies, '--json'])).stdout) as Standing;
    expect(acme.top.map((c) => [c.runId, c.amount])).toEqual([
      ['warden/refund-agent/a2', 200],
      ['warden/refund-agent/a1', 100],
      ['warden/refund-agent/a1b', 50],
      ['warden/refund-agent/g1', 30],
    ]);
    const one = JSON.parse((await warden(['quota', 'show', 'refunds-per-day', '--tenant', 'globex', '--policies', policies, '--json'])).stdout) as Standing;
    expect(one.counters.map((c) => [c.counter, c.used, c.reserved])).toEqual([['refund-agent/refunds-per-day|tenant=globex', 0, 1]]);
    expect(one.top.map((c) => c.tenant)).toEqual(['globex']);
  });

  test('bad input: an unknown quota names the quotas there are; --tenant on a quota not scoped by tenant is a usage error', async () => {
    const unknown = await warden(['quota', 'show', 'nope', '--policies', policies]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('error: no quota nope in the policies of');
    expect(unknown.stderr).toContain('quotas: refund-agent/refunds-per-day, refund-agent/refund-dollars');
    const unscoped = await warden(['quota', 'reset', 'refund-dollars', '--tenant', 'acme', '--policies', policies, '--by', 'olga', '--key', olgaKey, '--trusted', trusted]);
    expect(unscoped.code).toBe(2);
    expect(unscoped.stderr).toContain('quota refund-agent/refund-dollars is not scoped by tenant (scope: none): --tenant does not apply');
  });

  test('reset is refused without the operator role, or without a keyring to check it against; nothing changes', async () => {
    const noRole = await warden(['quota', 'reset', 'refunds-per-day', '--tenant', 'acme', '--policies', policies, '--by', 'nina', '--key', ninaKey, '--trusted', trusted]);
    expect(noRole.code).toBe(1);
    expect(noRole.stderr).toContain('error: resetting quota refund-agent/refunds-per-day refused: it needs the operator role, and operator key "cli-nina" may not assert role operator (its roles: none)');
    expect(noRole.stderr).toContain('Nothing was changed.');
    // Olga's key, claiming to be someone else.
    const notHers = await warden(['quota', 'reset', 'refunds-per-day', '--policies', policies, '--by', 'nina', '--key', olgaKey, '--trusted', trusted]);
    expect(notHers.code).toBe(1);
    expect(notHers.stderr).toContain('key "cli-olga" may not assert nina');
    const noKeyring = await warden(['quota', 'reset', 'refunds-per-day', '--policies', policies, '--by', 'olga', '--key', olgaKey]);
    expect(noKeyring.code).toBe(1);
    expect(noKeyring.stderr).toContain('resetting quota refund-agent/refunds-per-day needs the operator role: no trusted-keys file to check it against');

    const after = JSON.parse((await warden(['quota', 'show', 'refunds-per-day', '--policies', policies, '--json'])).stdout) as Standing;
    expect([after.used, after.reserved]).toEqual([3, 1]);
    expect(after.resets).toEqual([]);
  });

  test("an operator's reset of one tenant sets its counter to zero, leaves the others, and is recorded signed in the store", async () => {
    const r = await warden(['quota', 'reset', 'refunds-per-day', '--tenant', 'acme', '--reason', 'limit raised by finance', '--policies', policies, '--by', 'olga'], {
      WARDEN_SIGNING_KEY: olgaKey,
      WARDEN_TRUSTED_KEYS: trusted,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('reset refund-agent/refunds-per-day for tenant acme: 3 reservation(s) set to zero (calls used 3, reserved 0 in window day:');
    expect(r.stdout).toContain('by olga (key cli-olga, operator role), recorded in the run store as quota/refund-agent/refunds-per-day #1');

    const after = JSON.parse((await warden(['quota', 'show', 'refunds-per-day', '--policies', policies, '--json'])).stdout) as Standing;
    expect(after.counters.map((c) => [c.counter, c.used, c.reserved])).toEqual([['refund-agent/refunds-per-day|tenant=globex', 0, 1]]);
    expect(after.resets).toEqual([expect.objectContaining({ by: 'olga', tenant: 'acme', reservations: 3 })]);
    // The other quota counted the same calls and is not touched.
    const dollarsAfter = JSON.parse((await warden(['quota', 'show', 'refund-dollars', '--policies', policies, '--json'])).stdout) as Standing;
    expect([dollarsAfter.used, dollarsAfter.reserved]).toEqual([350, 30]);

    // A whole-quota reset, then the record: a hash chain whose events carry signatures the keyring verifies.
    expect((await warden(['quota', 'reset', 'refund-agent/refunds-per-day', '--policies', policies, '--by', 'olga', '--key', olgaKey, '--trusted', trusted])).code).toBe(0);
    const store = createSqliteStore(storeFile);
    try {
      const trail = await store.readAudit('quota/refund-agent/refunds-per-day');
      expect(trail.map((e) => [e.type, e.data.tenant, e.data.reservations])).toEqual([
        ['quota_reset', 'acme', 3],
        ['quota_reset', null, 1],
      ]);
      expect(verifyAuditChain(trail).ok).toBe(true);
      const keyring = loadKeyring(trusted);
      for (const e of trail) {
        const target = `quota:refund-agent/refunds-per-day${typeof e.data.tenant === 'string' ? `|tenant=${e.data.tenant}` : ''}`;
        const auth = authorizeOperator(e.data.signature, keyring, Date.parse(e.at), { action: 'quotaReset', runId: target });
        expect(auth.ok && auth.identity.id).toBe('olga');
      }
      expect((await store.quotaUsage({ quota: 'refund-agent/refunds-per-day' })).map((u) => u.committed + u.held)).toEqual([]);
      // The reservations are kept, marked: what was reset stays explainable.
      expect((await store.listQuotaReservations({ quota: 'refund-agent/refunds-per-day', states: ['reset'] })).length).toBe(4);
    } finally {
      await store.close();
    }
  });
});
