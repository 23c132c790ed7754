import { AuditBatchError, emptyAuditHead, nextAuditEvent, packAudit, unpackAudit, verifyAuditChain, type AuditBatch, type AuditEvent, type AuditHead } from '../../src/governance';

function chain(from: AuditHead, n: number): AuditEvent[] {
  const events: AuditEvent[] = [];
  let head = from;
  for (let i = 0; i < n; i++) {
    const e = nextAuditEvent(head, i % 2 ? 'tool_started' : 'policy_decision', { callId: `c${i}`, tool: 'pay', args: { amount: i * 1.5, note: 'ü ✓' } }, `2026-12-07T03:00:0${i}.000Z`);
    events.push(e);
    head = { seq: e.seq, hash: e.hash };
  }
  return events;
}

test('a batch carries no links, and the worker rebuilds exactly the events the workflow made', () => {
  const before = chain(emptyAuditHead(), 3);
  const events = chain({ seq: 3, hash: before[2]?.hash ?? '' }, 4);
  const batch = packAudit(events);
  // Through a payload as Temporal carries it (JSON).
  const carried = JSON.parse(JSON.stringify(batch)) as typeof batch;
  expect(JSON.stringify(carried)).not.toContain('prevHash":"' + (events[1]?.prevHash ?? ''));
  expect(JSON.stringify(carried).length).toBeLessThan(JSON.stringify(events).length - 2 * 2 * 64);
  const rebuilt = unpackAudit(carried);
  expect(rebuilt).toEqual(events);
  expect(verifyAuditChain([...before, ...rebuilt])).toEqual({ ok: true, count: 7, head: { seq: 7, hash: events[3]?.hash } });
});

test('nothing to send stays an empty list, and events sent whole (runs recorded before batches) pass as they are', () => {
  expect(packAudit([])).toEqual([]);
  const events = chain(emptyAuditHead(), 2);
  expect(unpackAudit(events)).toEqual(events);
});

test('a batch whose events were changed does not hash to its head, and is refused naming the events', () => {
  const batch = packAudit(chain(emptyAuditHead(), 3)) as AuditBatch;
  const altered = { ...batch, events: batch.events.map((e, i) => (i === 1 ? { ...e, data: { ...e.data, tool: 'transfer' } } : e)) };
  expect(() => unpackAudit(altered)).toThrow(AuditBatchError);
  expect(() => unpackAudit(altered)).toThrow(/audit batch of events 1–3 does not hash to the head it names/);
  expect(() => unpackAudit({ ...batch, prevHash: 'f'.repeat(64) })).toThrow(AuditBatchError);
});
