import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emptyAuditHead, nextAuditEvent, verifyAuditChain, type AuditEvent } from '../src/governance';
import { createSqliteStore, defaultStorePath, StoreError, type RunStore } from '../src/store';

describe('SQLite run store', () => {
  let dir: string;
  let file: string;
  let store: RunStore;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-store-'));
    // A nested path proves the store creates missing parent directories.
    file = path.join(dir, 'nested', 'warden.db');
    store = createSqliteStore(file);
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the file and its parent directories', () => {
    expect(existsSync(file)).toBe(true);
  });

  it('keeps the first row on a retried append in ignore mode (the default)', async () => {
    await store.appendMessages('run-1', [{ seq: 0, message: { role: 'user', content: 'first' } }]);
    await store.appendMessages('run-1', [
      { seq: 0, message: { role: 'user', content: 'retried' } },
      { seq: 1, message: { role: 'assistant', content: 'answer' } },
    ]);
    expect(await store.readMessages('run-1', 2)).toEqual([
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'answer' },
    ]);
  });

  it('takes the newest row on a retried append in replace mode', async () => {
    await store.appendMessages('run-1', [{ seq: 0, message: { role: 'assistant', content: 'attempt 1' } }], 'replace');
    await store.appendMessages('run-1', [{ seq: 0, message: { role: 'assistant', content: 'attempt 2' } }], 'replace');
    expect(await store.readMessages('run-1', 1)).toEqual([{ role: 'assistant', content: 'attempt 2' }]);
  });

  it('keeps runs apart and reads only the asked prefix', async () => {
    await store.appendMessages('run-a', [0, 1, 2].map((seq) => ({ seq, message: `a${seq}` })));
    await store.appendMessages('run-b', [{ seq: 0, message: 'b0' }]);
    expect(await store.readMessages('run-a', 2)).toEqual(['a0', 'a1']);
    expect(await store.readMessages('run-b', 1)).toEqual(['b0']);
    expect(await store.readMessages('run-a', 0)).toEqual([]);
  });

  it('names the run and the missing seq when there is a gap inside the range', async () => {
    await store.appendMessages('run-gap', [
      { seq: 0, message: 'm0' },
      { seq: 2, message: 'm2' },
    ]);
    const error: unknown = await store.readMessages('run-gap', 3).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).name).toBe('StoreError');
    expect((error as StoreError).message).toBe('run run-gap: message 1 is missing (reading messages [0, 3))');
  });

  it('names the missing seq when the range runs past the last row', async () => {
    await store.appendMessages('run-short', [{ seq: 0, message: 'm0' }]);
    await expect(store.readMessages('run-short', 2)).rejects.toThrow('run run-short: message 1 is missing');
    await expect(store.readMessages('run-none', 1)).rejects.toThrow('run run-none: message 0 is missing');
  });

  it('refuses a message that cannot be stored as JSON, naming it', async () => {
    await expect(store.appendMessages('run-1', [{ seq: 0, message: undefined }])).rejects.toThrow('run run-1 message 0 is not JSON-serialisable');
    await expect(store.appendMessages('run-1', [{ seq: -1, message: 'x' }])).rejects.toThrow(StoreError);
  });

  it('round-trips a hash-chained audit trail that still verifies, ignoring re-appended events', async () => {
    const events: AuditEvent[] = [];
    let head = emptyAuditHead();
    for (const [type, data] of [
      ['run_started', { agent: 'refund-agent', requester: 'alice' }],
      ['policy_decision', { tool: 'refund', decision: 'require_approval', args: { amount: 120, currency: 'EUR' } }],
      ['run_finished', { outcome: 'completed' }],
    ] as const) {
      const event = nextAuditEvent(head, type, data, `2025-01-01T00:00:0${events.length}.000Z`);
      events.push(event);
      head = { seq: event.seq, hash: event.hash };
    }
    await store.appendAudit('run-1', events.slice(0, 2));
    // The retry of the activity that carried the first two events, plus the last one.
    await store.appendAudit('run-1', events);
    const tampered = { ...events[0]!, data: { agent: 'someone-else' } };
    await store.appendAudit('run-1', [tampered]);

    const read = await store.readAudit('run-1');
    expect(read).toEqual(events);
    expect(verifyAuditChain(read)).toEqual({ ok: true, count: 3, head });
    expect(await store.readAudit('other-run')).toEqual([]);
  });

  it('round-trips the applied policy of an agent and replaces it on re-apply', async () => {
    expect(await store.getAppliedPolicy('refund-agent')).toBeNull();
    await store.setAppliedPolicy('refund-agent', { policy: { agent: 'refund-agent', tools: { refund: {} } }, version: 'v1', source: 'policies/refund.yaml' });
    const first = await store.getAppliedPolicy('refund-agent');
    expect(first).toMatchObject({ policy: { agent: 'refund-agent', tools: { refund: {} } }, version: 'v1', source: 'policies/refund.yaml' });
    expect(Number.isNaN(Date.parse(first!.appliedAt))).toBe(false);

    await store.setAppliedPolicy('refund-agent', { policy: { agent: 'refund-agent' }, version: 'v2', source: 'cli' });
    expect(await store.getAppliedPolicy('refund-agent')).toMatchObject({ policy: { agent: 'refund-agent' }, version: 'v2', source: 'cli' });
  });

  it('keeps every kind of row after the file is closed and reopened', async () => {
    const event = nextAuditEvent(emptyAuditHead(), 'run_started', { agent: 'a' }, '2025-01-01T00:00:00.000Z');
    await store.appendMessages('run-1', [{ seq: 0, message: { role: 'user', content: 'hi' } }]);
    await store.appendAudit('run-1', [event]);
    await store.setAppliedPolicy('a', { policy: { agent: 'a' }, version: 'v1', source: 'test' });
    await store.close();

    store = createSqliteStore(file);
    expect(await store.readMessages('run-1', 1)).toEqual([{ role: 'user', content: 'hi' }]);
    expect(await store.readAudit('run-1')).toEqual([event]);
    expect(await store.getAppliedPolicy('a')).toMatchObject({ version: 'v1', source: 'test' });
  });

  it('lets a second connection read rows the first one wrote (worker and CLI on one file)', async () => {
    await store.appendMessages('run-1', [{ seq: 0, message: 'shared' }]);
    const reader = createSqliteStore(file);
    try {
      expect(await reader.readMessages('run-1', 1)).toEqual(['shared']);
    } finally {
      await reader.close();
    }
  });
});

describe('defaultStorePath', () => {
  const saved = { db: process.env.WARDEN_DB, home: process.env.WARDEN_HOME };
  afterEach(() => {
    for (const [key, value] of [['WARDEN_DB', saved.db], ['WARDEN_HOME', saved.home]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('prefers WARDEN_DB, then WARDEN_HOME, then .warden', () => {
    delete process.env.WARDEN_DB;
    delete process.env.WARDEN_HOME;
    expect(defaultStorePath()).toBe(path.join('.warden', 'warden.db'));
    process.env.WARDEN_HOME = '/srv/warden';
    expect(defaultStorePath()).toBe(path.join('/srv/warden', 'warden.db'));
    process.env.WARDEN_DB = '/data/runs.db';
    expect(defaultStorePath()).toBe('/data/runs.db');
  });
});
