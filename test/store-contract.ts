/**
 * What every run store must do, whatever it is built on: the SQLite and PostgreSQL suites both
 * call `runStoreContract` inside their own `describe`, so the two stores are held to the same cases.
 */
import { emptyAuditHead, nextAuditEvent, verifyAuditChain, type AuditEvent } from '../src/governance';
import { StoreError, type RunStore } from '../src/store';

export interface StoreContractSubject {
  /** A location that holds no rows yet: a new file path, a new database's URL. */
  freshLocation(): Promise<string> | string;
  open(location: string): Promise<RunStore> | RunStore;
  /** Removes what `freshLocation` made, after the store is closed. */
  remove?(location: string): Promise<void> | void;
}

/** The store and location of the test that is running, for a suite's own extra cases. */
export interface StoreContractHandle {
  store(): RunStore;
  location(): string;
}

export function runStoreContract(subject: StoreContractSubject): StoreContractHandle {
  let location: string;
  let store: RunStore;

  beforeEach(async () => {
    location = await subject.freshLocation();
    store = await subject.open(location);
  });

  afterEach(async () => {
    await store.close();
    await subject.remove?.(location);
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

  it('keeps the first of two rows with one seq in a batch in ignore mode, the last in replace mode', async () => {
    await store.appendMessages('run-1', [
      { seq: 0, message: 'first' },
      { seq: 0, message: 'second' },
    ]);
    await store.appendMessages('run-2', [
      { seq: 0, message: 'first' },
      { seq: 0, message: 'second' },
    ], 'replace');
    expect(await store.readMessages('run-1', 1)).toEqual(['first']);
    expect(await store.readMessages('run-2', 1)).toEqual(['second']);
  });

  it('keeps runs apart and reads only the asked prefix', async () => {
    await store.appendMessages('run-a', [0, 1, 2].map((seq) => ({ seq, message: `a${seq}` })));
    await store.appendMessages('run-b', [{ seq: 0, message: 'b0' }]);
    expect(await store.readMessages('run-a', 2)).toEqual(['a0', 'a1']);
    expect(await store.readMessages('run-b', 1)).toEqual(['b0']);
    expect(await store.readMessages('run-a', 0)).toEqual([]);
  });

  it('reads a range that starts after 0, and names the missing seq inside it', async () => {
    await store.appendMessages('run-a', [0, 1, 2, 4].map((seq) => ({ seq, message: `a${seq}` })));
    expect(await store.readMessages('run-a', 3, 1)).toEqual(['a1', 'a2']);
    await expect(store.readMessages('run-a', 5, 2)).rejects.toThrow('run run-a: message 3 is missing (reading messages [2, 5))');
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
    await expect(store.readMessages('run-1', 1.5)).rejects.toThrow('run run-1 readMessages: seq must be a non-negative integer, got 1.5');
    // Neither refused batch left a row behind.
    await expect(store.readMessages('run-1', 1)).rejects.toThrow('run run-1: message 0 is missing');
  });

  it('round-trips text exactly, control characters and non-BMP characters included', async () => {
    const message = { role: 'tool', content: 'nul \u0000 bell \u0007 emoji \u{1F600} quote " backslash \\', big: 2 ** 53 - 1, nested: { list: [1.5, null, true] } };
    await store.appendMessages('run-text', [{ seq: 0, message }]);
    expect(await store.readMessages('run-text', 1)).toEqual([message]);
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

  it('lists applied policies by agent name and removes one, saying whether there was one', async () => {
    expect(await store.listAppliedPolicies()).toEqual([]);
    for (const agent of ['procurement-agent', 'Refund-agent', 'refund-agent']) await store.setAppliedPolicy(agent, { policy: { agent }, version: `v-${agent}`, source: 'cli' });
    const listed = await store.listAppliedPolicies();
    // Byte order: upper case before lower case, whatever the locale.
    expect(listed.map((p) => p.agent)).toEqual(['Refund-agent', 'procurement-agent', 'refund-agent']);
    expect(listed[1]).toMatchObject({ agent: 'procurement-agent', policy: { agent: 'procurement-agent' }, version: 'v-procurement-agent', source: 'cli' });

    expect(await store.removeAppliedPolicy('procurement-agent')).toBe(true);
    expect(await store.removeAppliedPolicy('procurement-agent')).toBe(false);
    expect(await store.getAppliedPolicy('procurement-agent')).toBeNull();
    expect((await store.listAppliedPolicies()).map((p) => p.agent)).toEqual(['Refund-agent', 'refund-agent']);
  });

  it('gives a run id to the first execution that claims it, and to that execution only', async () => {
    expect(await store.claimRun('warden/a/1', 'exec-1')).toBe('exec-1');
    // A retried activity of the same execution claims again: still its own.
    expect(await store.claimRun('warden/a/1', 'exec-1')).toBe('exec-1');
    expect(await store.claimRun('warden/a/1', 'exec-2')).toBe('exec-1');
    expect(await store.claimRun('warden/a/2', 'exec-2')).toBe('exec-2');
  });

  it('makes one seal key and gives every opener of the store the same one', async () => {
    const key = await store.sealKey();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(await store.sealKey()).toBe(key);
    const other = await subject.open(location);
    try {
      expect(await other.sealKey()).toBe(key);
    } finally {
      await other.close();
    }
  });

  it('keeps every kind of row after the file is closed and reopened', async () => {
    const event = nextAuditEvent(emptyAuditHead(), 'run_started', { agent: 'a' }, '2025-01-01T00:00:00.000Z');
    await store.appendMessages('run-1', [{ seq: 0, message: { role: 'user', content: 'hi' } }]);
    await store.appendAudit('run-1', [event]);
    await store.setAppliedPolicy('a', { policy: { agent: 'a' }, version: 'v1', source: 'test' });
    await store.close();

    store = await subject.open(location);
    expect(await store.readMessages('run-1', 1)).toEqual([{ role: 'user', content: 'hi' }]);
    expect(await store.readAudit('run-1')).toEqual([event]);
    expect(await store.getAppliedPolicy('a')).toMatchObject({ version: 'v1', source: 'test' });
  });

  it('lets a second connection read rows the first one wrote (worker and CLI on one file)', async () => {
    await store.appendMessages('run-1', [{ seq: 0, message: 'shared' }]);
    const reader = await subject.open(location);
    try {
      expect(await reader.readMessages('run-1', 1)).toEqual(['shared']);
    } finally {
      await reader.close();
    }
  });

  return { store: () => store, location: () => location };
}
