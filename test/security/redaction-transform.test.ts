/**
 * A tool schema that renames or reshapes its arguments with a zod transform: what the run governs
 * (and approvers, queries and the audit trail see) is the schema's output, so redaction must follow
 * the output side. Here through a real run: the pending approval and the audit trail of a call to a
 * tool whose object-level transform renames the sensitive `card` to `cardNumber`.
 */
import { z } from 'zod';
import { defineAgent, defineTool } from '../../src/agents';
import { REDACTED } from '../../src/governance';
import { effects } from '../fixtures/test-agents';
import { createTestBed, eventually, testPolicy, type TestBed } from '../helpers';

const CARD = '4242424242424242';
const secret = () => z.string().meta({ sensitive: true });

/** Renames its sensitive field: the output side describes nothing, so the parsed arguments are hidden whole. */
const charge = defineTool({
  name: 'charge',
  description: 'Charges a card',
  input: z.object({ card: secret(), amount: z.number() }).transform(({ card, amount }) => ({ cardNumber: card, amount })),
  run: (args, ctx) => {
    effects.log.push({ tool: 'charge', args, key: ctx.idempotencyKey });
    return { charged: args.amount };
  },
});

/** The same rename with its output described (and marked): approvers see the amount, never the card. */
const chargeDescribed = defineTool({
  name: 'charge_described',
  description: 'Charges a card',
  input: z
    .object({ card: secret(), amount: z.number() })
    .transform(({ card, amount }) => ({ cardNumber: card, amount }))
    .pipe(z.object({ cardNumber: secret(), amount: z.number() })),
  run: (args, ctx) => {
    effects.log.push({ tool: 'charge_described', args, key: ctx.idempotencyKey });
    return { charged: args.amount };
  },
});

const cardAgent = defineAgent({ name: 'card-agent', instructions: 'Charges cards.', model: 'scripted', tools: [charge, chargeDescribed] });
const cardPolicy = testPolicy({
  agent: 'card-agent',
  tools: { charge: {}, charge_described: {} },
  rules: [{ id: 'charges-need-finance', tools: ['charge', 'charge_described'], decision: 'require_approval', reason: 'money', approval: { approvers: ['group:finance'], timeout: '10m' } }],
});

let bed: TestBed;
beforeAll(async () => {
  bed = await createTestBed({ agents: [cardAgent], policies: [cardPolicy], acceptRunInputPolicy: false });
});
afterAll(async () => {
  await bed?.close();
});

async function pendingCall(tool: string) {
  const runId = await bed.client.startRun({ agent: 'card-agent', goal: 'charge the card', requester: 'carol', script: [{ toolCalls: [{ name: tool, args: { card: CARD, amount: 12 } }] }, { text: 'done' }] });
  const approval = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
  const proposed = await eventually(async () => (await bed.client.auditTrail(runId, bed.store)).find((e) => e.type === 'call_proposed'), 20_000, 'call_proposed');
  return { runId, approval, proposed };
}

describe('redaction follows a transform that renames the sensitive field', () => {
  test('the card number reaches neither the approvers nor the audit trail', async () => {
    const { runId, approval, proposed } = await pendingCall('charge');
    expect(JSON.stringify(approval)).not.toContain(CARD);
    expect(JSON.stringify(proposed.data)).not.toContain(CARD);
    expect(approval.args).toEqual({ arguments: REDACTED });
    await bed.client.cancel(runId);
    expect(effects.count('charge')).toBe(0);
  });

  test('with the output described by .pipe, only the marked field is hidden', async () => {
    const { runId, approval, proposed } = await pendingCall('charge_described');
    expect(approval.args).toEqual({ cardNumber: REDACTED, amount: 12 });
    expect(proposed.data).toMatchObject({ args: { cardNumber: REDACTED, amount: 12 } });
    await bed.client.cancel(runId);
  });
});
