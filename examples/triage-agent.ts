/**
 * A front-desk triage agent. It reads the customer's order and hands refund requests to the
 * refund agent (`examples/refund-agent.ts`) instead of holding refund tools itself: the refund
 * agent's own policy still decides every refund, and the refund agent's run spends from the
 * triage run's budgets (`policies/triage-agent.yaml`), so a hand-off cannot buy more room.
 */
import { defineAgent } from '../src/agents';
import { exampleModel } from './model';
import { lookupOrder, refundAgent } from './refund-agent';

export const triageAgent = defineAgent({
  name: 'triage-agent',
  description: 'Reads customer requests and routes refunds to the refund agent.',
  instructions: [
    'You are the first point of contact for customers of an online shop.',
    'Look the order up with lookup_order to understand the request.',
    'Hand refund requests to the refund agent (agent__refund-agent) with a goal that says the order, what went wrong and what the customer asks for: it sees nothing of this conversation.',
    'When it answers, tell the customer the result in two or three sentences.',
  ].join('\n'),
  model: exampleModel(),
  tools: [lookupOrder],
  delegates: [refundAgent],
});
