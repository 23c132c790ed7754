import { condition, defineUpdate, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';

import { agentSearchAttribute, statusSearchAttribute } from '../src/workflows/search-attributes';

export { agentRun } from '../src/workflows';

interface BareActivities {
  bareNoop(input: { i: number }): Promise<{ summary: string }>;
  bareModel(input: { step: number; of: number }): Promise<{ call: { name: string; args: { i: number } } | null }>;
}

const { bareNoop, bareModel } = proxyActivities<BareActivities>({ startToCloseTimeout: '1 minute' });

/** The lower bound: the same no-op activity, called N times by a bare workflow. */
export async function bareLoop(n: number): Promise<number> {
  for (let i = 0; i < n; i++) await bareNoop({ i });
  return n;
}

/**
 * The honest baseline for what governance costs: an ungoverned agent loop as Temporal's agent
 * samples write it — a model activity proposes the next call, a tool activity runs it — with the
 * same small payloads, no checks, no audit, no approvals.
 */
export async function agentLoop(n: number): Promise<number> {
  let calls = 0;
  for (let step = 0; ; step++) {
    const { call } = await bareModel({ step, of: n });
    if (!call) return calls;
    await bareNoop(call.args);
    calls++;
  }
}

/** The bare approval: an Update naming who approved, accepted as it comes (no signature, no policy). */
export const bareApproveUpdate = defineUpdate<string, [string]>('approve');

/**
 * The floor of the waiting-approvals scenario on Temporal: a model activity proposes one call,
 * the run says it waits (the search attributes an inbox would list it by, as a Warden run does),
 * an Update approves it, the tool activity runs and the model is asked once more. No policy,
 * no audit, no signature check, no memo.
 */
export async function bareApproval(agent: string): Promise<string> {
  let approvedBy: string | undefined;
  setHandler(bareApproveUpdate, (by) => {
    approvedBy = by;
    return 'accepted';
  });
  const { call } = await bareModel({ step: 0, of: 1 });
  if (!call) return 'nothing to approve';
  upsertSearchAttributes([
    { key: agentSearchAttribute, value: agent },
    { key: statusSearchAttribute, value: 'awaiting_approval' },
  ]);
  await condition(() => approvedBy !== undefined);
  upsertSearchAttributes([{ key: statusSearchAttribute, value: 'running' }]);
  await bareNoop(call.args);
  await bareModel({ step: 1, of: 1 });
  upsertSearchAttributes([{ key: statusSearchAttribute, value: 'completed' }]);
  return `paid, approved by ${approvedBy ?? ''}`;
}
