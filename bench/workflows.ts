import { proxyActivities } from '@temporalio/workflow';

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
