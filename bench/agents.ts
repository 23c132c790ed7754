import { z } from 'zod';
import { defineAgent, defineTool } from '../src/agents';
import { parsePolicy } from '../src/governance';

/** The agent of the waiting-approvals scenario: one `pay` call that finance must approve. */
export const payTool = defineTool({ name: 'pay', description: 'pays', input: z.object({ amount: z.number() }), run: () => 'paid' });
export const approvalAgent = defineAgent({ name: 'bench-approvals', instructions: 'bench', model: 'scripted', tools: [payTool] });
export const approvalPolicy = parsePolicy(
  {
    agent: 'bench-approvals',
    tools: { pay: {} },
    rules: [{ id: 'pay-needs-finance', tools: ['pay'], decision: 'require_approval', approval: { approvers: ['group:finance'], timeout: '1h' } }],
  },
  'bench approvals',
);
