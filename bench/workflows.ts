import { proxyActivities } from '@temporalio/workflow';

// The benchmark's baseline: the same no-op activity, called N times by a bare workflow.
export { agentRun } from '../src/workflows';

const { bareNoop } = proxyActivities<{ bareNoop(input: { i: number }): Promise<{ summary: string }> }>({ startToCloseTimeout: '1 minute' });

export async function bareLoop(n: number): Promise<number> {
  for (let i = 0; i < n; i++) await bareNoop({ i });
  return n;
}
