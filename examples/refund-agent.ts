/**
 * A customer-service refund agent.
 *
 * The incident it is built from is a common one: a support agent that could call a finance API
 * was asked by a customer to "sort out" their account and raised the customer's credit limit,
 * because nothing but the prompt said it should not. Here the tool exists, the model may ask for
 * it, and `policies/refund-agent.yaml` denies it; small refunds run on their own and large ones
 * wait for the finance team.
 */
import { z } from 'zod';
import { defineAgent, defineTool, ToolError } from '../src/agents';
import { exampleModel } from './model';
import { asToolError } from './shop/as-tool-error';
import { getOrder, issueRefund as issueShopRefund, refundableAmount, refundsFor, reverseRefund, setCreditLimit } from './shop/store';

const orderId = z.string().regex(/^ORD-\d+$/, 'must be an order id such as ORD-1001').describe('Order id, e.g. ORD-1001');
const customerId = z.string().regex(/^CUST-\d+$/, 'must be a customer id such as CUST-001').describe('Customer id, e.g. CUST-001');
const usd = z.number().positive().multipleOf(0.01);

export const lookupOrder = defineTool({
  name: 'lookup_order',
  description: 'Reads an order: customer, amount, status, the refunds already issued and how much may still be refunded.',
  input: z.strictObject({ orderId }),
  risk: 'low',
  timeout: '10s',
  run: ({ orderId }) =>
    asToolError(() => {
      const order = getOrder(orderId);
      if (!order) throw new ToolError(`no order ${orderId}; check the id with the customer`);
      return {
        ...order,
        refunds: refundsFor(orderId).map((r) => ({ id: r.id, amount: r.amount, status: r.status })),
        refundableLeft: refundableAmount(orderId),
      };
    }),
});

export const issueRefund = defineTool({
  name: 'issue_refund',
  description:
    'Refunds part or all of an order to the original payment method. Amount in USD; the refunds of one order may not add up to more than it cost. ' +
    'Refunds over $100 wait for a person in finance to approve them.',
  input: z.strictObject({
    orderId,
    amount: usd.describe('USD to refund, at most what lookup_order reports as refundableLeft'),
    reason: z.string().min(3).max(200).describe('Why, in a few words, for the finance ledger (e.g. "damaged on arrival")'),
    customerNote: z
      .string()
      .max(1000)
      .optional()
      .meta({
        sensitive: true,
        description: "The customer's own words. They often hold personal data, so Warden keeps them out of audit trails and approval screens.",
      }),
  }),
  risk: 'high',
  timeout: '30s',
  // A payment provider that is briefly unavailable is worth a few tries; the idempotency key
  // makes every try after the first return the same refund.
  retry: { maximumAttempts: 5, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  run: (args, ctx) =>
    asToolError(() => {
      const { refund, created } = issueShopRefund({
        orderId: args.orderId,
        amount: args.amount,
        reason: args.reason,
        note: args.customerNote,
        idempotencyKey: ctx.idempotencyKey,
      });
      ctx.log.info({ refundId: refund.id, orderId: refund.orderId, amount: refund.amount, created }, created ? 'refund issued' : 'refund already issued for this call');
      return { refundId: refund.id, orderId: refund.orderId, amount: refund.amount, status: refund.status, refundableLeft: refundableAmount(refund.orderId) };
    }),
  compensate: (_args, result, ctx) => {
    const refund = asToolError(() => reverseRefund(result.refundId));
    ctx.log.info({ refundId: refund.id, status: refund.status }, 'refund reversed');
  },
});

export const changeCreditLimit = defineTool({
  name: 'change_credit_limit',
  description: "Sets a customer's credit limit in USD. A financial adjustment: the finance team decides these.",
  input: z.strictObject({
    customerId,
    newLimit: z.number().min(0).multipleOf(0.01).describe('The new credit limit in USD'),
  }),
  risk: 'high',
  run: ({ customerId, newLimit }, ctx) =>
    asToolError(() => {
      const change = setCreditLimit(customerId, newLimit);
      ctx.log.info({ customerId, ...change }, 'credit limit changed');
      return { customerId, ...change };
    }),
  compensate: (_args, result) => {
    asToolError(() => setCreditLimit(result.customerId, result.previousLimit));
  },
});

export const refundAgent = defineAgent({
  name: 'refund-agent',
  description: 'Handles refund requests for the example shop.',
  instructions: [
    'You are a customer-service agent for an online shop and you handle refund requests.',
    'Look the order up with lookup_order before refunding, and never refund more than its refundableLeft.',
    'Give a short reason for the ledger; put the customer\'s own words in customerNote, not in reason.',
    'Refunds over $100 are held for the finance team: propose them anyway and tell the customer they are pending approval.',
    'Credit limits, payment terms and prices are decided by finance, not by you: if a customer asks, say a colleague will follow up.',
    'When the request is handled, answer the customer in two or three sentences.',
  ].join('\n'),
  model: exampleModel(),
  tools: [lookupOrder, issueRefund, changeCreditLimit],
});
