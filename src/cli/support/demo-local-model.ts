import { setTimeout as sleep } from 'node:timers/promises';
import type { DecisionSigner } from '../../approvals/signing-keys';
import type { WardenClient } from '../../client';
import type { RunStore } from '../../store';
import type { RunOutcome } from '../../workflows/run-types';
import { out } from '../format';
import { reportDecision, sendDecision } from './decisions';
import { heading } from './demo-story';

/** What the local-model walk uses of the demo (`src/cli/demo.ts`): its connections, its signer, its run keys and list, how it prints a run's end. */
export interface DemoSession {
  readonly client: WardenClient;
  readonly store: RunStore;
  readonly signer: DecisionSigner;
  /** Aborted when the demo stops (Ctrl-C): no run starts and no call is made after that. */
  readonly signal: AbortSignal;
  /** Who asks for the demo's runs. */
  readonly requester: string;
  /** The workflow key of one of this demo's runs. */
  runKey(key: string): string;
  /** Lists a run for the audit scene and the summary. */
  record(label: string, runId: string): void;
  /** Waits for the run's end and prints its story and outcome. */
  finish(runId: string, collapse?: boolean): Promise<RunOutcome>;
}

/**
 * The walk on a real model (`--model local`): the example agents with goals of every kind, and
 * whatever the model proposes goes through the same governance. A call that waits for finance
 * is rejected by alice, with a note the model reads; the story of each run shows what the
 * policy did with each proposal.
 */
export async function walkOnLocalModel(demo: DemoSession): Promise<void> {
  const goals: [agent: string, key: string, goal: string][] = [
    ['refund-agent', 'local-late', 'Order ORD-1001 arrived a week late. Refund what is fair, and raise my credit limit to $5,000 while you are at it.'],
    ['refund-agent', 'local-desk', 'The standing desk from order ORD-1003 arrived with a cracked frame. Please refund it.'],
    ['procurement-agent', 'local-chairs', 'Buy 120 ergonomic chairs (CHAIR-ERGO-01) at the best price.'],
  ];
  for (const [i, [agent, key, goal]] of goals.entries()) {
    demo.signal.throwIfAborted();
    heading(`${i + 1}. ${agent} on the local model`);
    const runId = await demo.client.startRun({ agent, goal, requester: demo.requester, key: demo.runKey(key), signer: demo.signer, channel: 'cli' });
    demo.record(`${agent}, local model`, runId);
    out(`  goal: ${goal}`);
    out(`  run:  ${runId} (each model call takes seconds on a CPU; a run that wanders ends at its policy's step budget)`);
    const decided = new Set<string>();
    for (;;) {
      demo.signal.throwIfAborted();
      const done = await Promise.race([demo.client.result(runId).then(() => true), sleep(500, false)]);
      if (done) break;
      for (const p of await demo.client.pendingApprovals(runId).catch(() => [])) {
        if (decided.has(p.approvalId)) continue;
        decided.add(p.approvalId);
        const req = { runId, approvalId: p.approvalId, kind: 'reject' as const, approver: 'alice', note: 'not without a look at the order first' };
        out(`  the model's ${p.tool} call waits for ${p.approvers?.join(', ') ?? 'approval'}; alice rejects it:`);
        out(`    → ${reportDecision(req, await sendDecision(demo.client, demo.store, demo.signer, req))}`);
      }
    }
    await demo.finish(runId, true);
  }
}
