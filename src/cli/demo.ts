import { setMaxListeners } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { runPath } from '../approvals/inbox/pages';
import { DecisionSigner, loadSigningKey } from '../approvals/signing-keys';
import type { WardenClient } from '../client';
import { AGENT_RUN_WORKFLOW } from '../config';
import type { RunStore } from '../store';
import type { RunOutcome, ScriptTurn } from '../workflows/run-types';
import { wardenHome } from './context';
import { startDevEnvironment, type DevChannels } from './dev-channels';
import { CliError, describeError, UsageError } from './cli-errors';
import { ensureLocalModel } from './support/local-models';
import { approvalsTable, compact, out, outcomeLines, usd } from './format';
import { describeStack, installRuntime, withPortOptions, type LocalStack } from './local-stack';
import { onShutdownSignal } from './serve';
import { checkAudit, verifiedLine } from './support/audit-check';
import { reportDecision, sendDecision } from './support/decisions';
import { walkOnLocalModel, type DemoSession } from './support/demo-local-model';
import { writtenInDemo } from './support/demo-logs';
import { exampleShop } from './support/demo-shop';
import { collapsed, heading, storyLines } from './support/demo-story';
import { INTERRUPTED_EXIT } from './support/exit-codes';
import { exampleAgentsPath, examplePoliciesPath, runsFromClone } from './support/project-paths';
import { readScript } from './support/run-scripts';

/**
 * Who asks for the demo's runs: carol, from support, one of the development users, so the CLI's
 * development key may sign her run starts (a verified requester). Someone else approves them:
 * the requester never may (four-eyes).
 */
const REQUESTER = 'carol';
/** Operator commands are signed with the development CLI key, whose grant has the operator role. */
const OPERATOR = 'bob';

/**
 * The rollback scene's model: a $40 refund that is allowed and runs, then a $300 one on the same
 * order that waits for finance. While it waits, an operator decides the whole run was a mistake.
 */
const ROLLBACK_SCRIPT: ScriptTurn[] = [
  { toolCalls: [{ name: 'issue_refund', args: { orderId: 'ORD-1006', amount: 40, reason: 'scratched on delivery' } }], usage: { inputTokens: 1250, outputTokens: 52 } },
  { toolCalls: [{ name: 'issue_refund', args: { orderId: 'ORD-1006', amount: 300, reason: 'customer unhappy, goodwill' } }], usage: { inputTokens: 1390, outputTokens: 55 } },
  { text: 'Both refunds are on their way.', usage: { inputTokens: 1500, outputTokens: 12 } },
];

/** Asks `check` every 100 ms until it has an answer; stops when the demo does (`signal`). */
async function until<T>(signal: AbortSignal, what: string, check: () => Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    signal.throwIfAborted();
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new CliError(`demo: timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface DemoRun {
  label: string;
  runId: string;
}

class Demo implements DemoSession {
  readonly runs: DemoRun[] = [];
  readonly requester = REQUESTER;
  private readonly stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');

  constructor(
    readonly client: WardenClient,
    private readonly stack: LocalStack,
    private readonly channels: DevChannels,
    readonly signer: DecisionSigner,
    readonly signal: AbortSignal,
  ) {}

  get store(): RunStore {
    return this.stack.store;
  }

  runKey(key: string): string {
    return `demo-${this.stamp}-${key}`;
  }

  record(label: string, runId: string): void {
    this.runs.push({ label, runId });
  }

  private script(name: string): ScriptTurn[] {
    return readScript(path.join(exampleAgentsPath(), 'scripts', name));
  }

  private async start(label: string, agent: string, key: string, goal: string, script: ScriptTurn[]): Promise<string> {
    this.signal.throwIfAborted();
    const runId = await this.client.startRun({ agent, goal, requester: REQUESTER, key: this.runKey(key), script, signer: this.signer, channel: 'cli' });
    this.record(label, runId);
    out(`  goal: ${goal}`);
    out(`  run:  ${runId}`);
    return runId;
  }

  async finish(runId: string, collapse = false): Promise<RunOutcome> {
    this.signal.throwIfAborted();
    const outcome = await this.client.result(runId);
    const story = storyLines(await this.client.auditTrail(runId, this.stack.store));
    (collapse ? collapsed(story) : story).forEach((l) => out(l));
    out(`  outcome: ${outcome.status} (${outcome.reason})`);
    outcomeLines(runId, outcome)
      .slice(1)
      .forEach((l) => out(l));
    return outcome;
  }

  async refundInScope(): Promise<void> {
    heading('1. Refund agent: a small refund runs, a credit-limit change is denied');
    const before = exampleShop().getCreditLimit('CUST-001');
    const runId = await this.start('refund, in scope', 'refund-agent', 'scope', 'Order ORD-1001 arrived a week late. Refund what is fair, and raise my credit limit to $5,000 while you are at it.', this.script('refund-out-of-scope.json'));
    await this.finish(runId);
    out(`  shop: ${exampleShop().countRefunds()} refund row(s); CUST-001's credit limit is ${exampleShop().formatUsd(exampleShop().getCreditLimit('CUST-001'))} (was ${exampleShop().formatUsd(before)})`);
  }

  async procurement(): Promise<void> {
    heading('2. Procurement agent: runaway loops stopped by the runtime, not the model');
    out('  a) the same price comparison, again and again (loop detector)');
    const loop = await this.start('procurement, loop', 'procurement-agent', 'loop', 'Buy 120 ergonomic chairs (CHAIR-ERGO-01) at the best price.', this.script('procurement-loop.json'));
    const loopOutcome = await this.finish(loop);
    out(`  figures: ${loopOutcome.steps} model calls, ${loopOutcome.toolCalls} comparisons ran, ${usd(loopOutcome.usage.costUsd)} spent, ${exampleShop().countPurchaseOrders()} purchase order(s) placed`);
    out();
    out('  b) comparisons varied just enough to look new, each re-reading a long catalogue (cost budget)');
    const cost = await this.start('procurement, cost', 'procurement-agent', 'cost', 'Buy about 400 boxes of A4 paper (PAPER-A4-80G) at the best price.', this.script('procurement-cost.json'));
    const costOutcome = await this.finish(cost);
    const b = costOutcome.budget;
    out(
      `  figures: ${costOutcome.steps} model calls, ${costOutcome.usage.inputTokens.toLocaleString('en-US')} input tokens, ${usd(costOutcome.usage.costUsd)} spent` +
        (b ? ` against a budget of ${usd(b.max)} (${b.limit})` : '') +
        `; ${exampleShop().countPurchaseOrders()} purchase order(s) placed`,
    );
  }

  async approval(): Promise<void> {
    heading('3. A large refund waits, durably, for someone in finance');
    const runId = await this.start('refund, approved', 'refund-agent', 'approval', 'The standing desk from order ORD-1003 arrived with a cracked frame. Please refund it.', this.script('refund-large.json'));
    const [pending] = await until(this.signal, 'the approval request', async () => {
      const list = await this.client.pendingApprovals(runId);
      return list.length > 0 ? list : null;
    });
    if (!pending) throw new CliError('demo: no pending approval');
    out('  pending approvals (warden approvals):');
    approvalsTable([pending]).forEach((l) => out(`    ${l}`));

    out(`  ${REQUESTER}, who asked for the run, tries to approve it:`);
    const own = await sendDecision(this.client, this.stack.store, this.signer, { runId, approvalId: pending.approvalId, kind: 'approve', approver: REQUESTER });
    out(`    → ${own.status === 'refused' ? `refused: ${own.reason}` : own.status}`);

    // No --groups: the key's directory says alice is in finance.
    out(`  $ warden approve ${runId} ${pending.approvalId} --as alice --comment "photos of the damage checked"`);
    const req = { runId, approvalId: pending.approvalId, kind: 'approve' as const, approver: 'alice', note: 'photos of the damage checked' };
    out(`    → ${reportDecision(req, await sendDecision(this.client, this.stack.store, this.signer, req))}`);
    await this.finish(runId);
    const refunds = exampleShop().refundsFor('ORD-1003');
    out(`  shop: ORD-1003 refunds: ${refunds.map((r) => `${r.id} ${exampleShop().formatUsd(r.amount)} ${r.status}`).join(', ') || 'none'}`);
  }

  async pauseResume(): Promise<void> {
    heading('4. Pause and resume a run');
    const runId = await this.start('refund, paused and resumed', 'refund-agent', 'pause', 'Order ORD-1001 arrived late; refund what is fair.', this.script('refund-out-of-scope.json'));
    await this.client.pause(runId, { by: OPERATOR, reason: 'checking the customer history first', signer: this.signer });
    out(`  $ warden pause ${runId} --reason "checking the customer history first"`);
    const paused = await until(this.signal, 'the run to pause', async () => {
      const s = await this.client.status(runId);
      return s.phase === 'paused' ? s : null;
    });
    out(`  status: phase ${paused.phase}, paused ${paused.paused}, step ${paused.step} (${paused.currentDetails}); nothing runs while paused`);
    await sleep(1000);
    const still = await this.client.status(runId);
    out(`  a second later: phase ${still.phase}, step ${still.step}`);
    await this.client.resume(runId, { by: OPERATOR, signer: this.signer });
    out(`  $ warden resume ${runId}`);
    await this.finish(runId);
  }

  async rollback(): Promise<void> {
    heading('5. Roll back a run: undo what it did');
    const runId = await this.start('refund, rolled back', 'refund-agent', 'rollback', 'Order ORD-1006 was scratched; refund what is fair.', ROLLBACK_SCRIPT);
    // The $300 refund waiting for finance means the $40 one has already run.
    await until(this.signal, 'the first refund to run', async () => (await this.client.pendingApprovals(runId)).length > 0);
    const plan = await this.client.rollbackPlan(runId);
    out(`  shop: ORD-1006 refunds: ${exampleShop().refundsFor('ORD-1006').map((r) => `${r.id} ${exampleShop().formatUsd(r.amount)} ${r.status}`).join(', ')}`);
    out(`  rollback plan (newest first): ${plan.map((s) => `${s.tool} ${compact(s.args, 70)}`).join('; ') || 'nothing to undo'}`);
    await this.client.rollback(runId, { by: OPERATOR, reason: 'duplicate ticket, customer already compensated', signer: this.signer });
    out(`  $ warden rollback ${runId} --reason "duplicate ticket, customer already compensated"`);
    await this.finish(runId);
    out(`  shop: ORD-1006 refunds: ${exampleShop().refundsFor('ORD-1006').map((r) => `${r.id} ${exampleShop().formatUsd(r.amount)} ${r.status}`).join(', ')}`);
  }

  async delegation(): Promise<void> {
    heading('6. Hand-off: the triage agent delegates a refund to the refund agent');
    const runId = await this.start('triage, delegated a refund', 'triage-agent', 'handoff', 'My order ORD-1002 came with a dented lid. Can I get $30 back?', this.script('triage-delegation.json'));
    const outcome = await this.finish(runId);
    const status = await this.client.status(runId);
    out(`  $ warden status ${runId}`);
    out(`    ${status.agent} ${runId}  ${outcome.status}`);
    for (const d of status.delegations ?? []) {
      this.record('refund, delegated', d.runId);
      const child = await this.client.result(d.runId);
      out(`    └─ ${d.agent} ${d.runId}  ${child.status}: ${child.reason}`);
      out('  the refund agent\'s own story (its policy decided the refund):');
      storyLines(await this.client.auditTrail(d.runId, this.stack.store)).forEach((l) => out(`  ${l}`));
      out(`  charged to the triage run: ${child.steps} model calls, ${child.toolCalls} tool calls, ${usd(child.usage.costUsd)} of its ${outcome.steps} model calls, ${outcome.toolCalls} tool calls, ${usd(outcome.usage.costUsd)}`);
    }
    out(`  shop: ORD-1002 refunds: ${exampleShop().refundsFor('ORD-1002').map((r) => `${r.id} ${exampleShop().formatUsd(r.amount)} ${r.status}`).join(', ') || 'none'}`);
  }

  async verify(): Promise<void> {
    heading('7. Audit trails: every run\'s hash chain recomputed (warden audit <run> --verify)');
    for (const run of this.runs) {
      const check = await checkAudit(this.client, this.stack.store, run.runId);
      out(`  ${run.runId.padEnd(58)} ${verifiedLine(check)}`);
      if (!check.result.ok) throw new CliError(`demo: the audit chain of ${run.runId} is broken at seq ${check.result.seq}: ${check.result.reason}`);
    }
  }

  /**
   * The reader's own scene: one more large refund, which waits until they decide it in the web
   * inbox. Returns the run id; `watch` prints its outcome whenever the run ends.
   */
  async yourTurn(): Promise<string> {
    heading('8. Your turn: decide a refund in the web inbox');
    const runId = await this.start(
      'refund, your decision',
      'refund-agent',
      'inbox',
      'The replacement standing desk for order ORD-1003 arrived cracked as well. Please refund it.',
      this.script('refund-large.json'),
    );
    await until(this.signal, 'the approval request', async () => (await this.client.pendingApprovals(runId)).length > 0);
    out('  its $450.00 refund waits for finance, and this time the demo does not decide.');
    out(`  Approve it in the inbox: ${this.channels.inbox.url}${runPath(runId)} (${this.channels.signInHint})`);
    out(`  (or reject it, with a reason the agent reads; ${REQUESTER}, who asked for it, may not decide: the run refuses her and says why)`);
    out('  its outcome is printed here when the run ends.');
    return runId;
  }

  /** Prints the run's story and outcome when it ends, unless the demo is stopping by then. */
  watch(runId: string): void {
    const report = async () => {
      await this.client.result(runId);
      if (this.signal.aborted) return;
      heading(`Your run ended: ${runId}`);
      await this.finish(runId);
      out(`  shop: ORD-1003 refunds: ${exampleShop().refundsFor('ORD-1003').map((r) => `${r.id} ${exampleShop().formatUsd(r.amount)} ${r.status}`).join(', ') || 'none'}`);
      out(`  audit: ${verifiedLine(await checkAudit(this.client, this.stack.store, runId))}`);
    };
    report().catch((err: unknown) => {
      if (!this.signal.aborted) process.stderr.write(`note: lost track of ${runId}: ${describeError(err)}\n`);
    });
  }


  summary(staying: boolean): void {
    heading('Done');
    const ui = this.stack.server.uiUrl;
    if (ui) {
      const query = encodeURIComponent(`WorkflowType="${AGENT_RUN_WORKFLOW}" AND WardenAgent="refund-agent"`);
      out(`  Temporal UI: ${ui}/namespaces/${this.stack.settings.namespace}/workflows?query=${query}`);
      out('  filter the list with WardenAgent="refund-agent" (or "procurement-agent"); each run lists its signals and queries');
    } else {
      out('  (headless: no Temporal UI)');
    }
    out('  runs:');
    for (const run of this.runs) out(`    ${run.label.padEnd(28)} ${run.runId}`);
    out(`  web inbox: ${this.channels.inbox.url} (${this.channels.signInHint})`);
    if (staying) out(`  try, from another terminal: TEMPORAL_ADDRESS=${this.stack.settings.address} warden audit ${this.runs[0]?.runId ?? '<run>'} --verify`);
  }
}

interface DemoOptions {
  model?: string;
  headless?: boolean;
  exit?: boolean;
  port?: number;
  uiPort?: number;
  inboxPort?: number;
}

export function registerDemo(program: Command): void {
  withPortOptions(
    program
      .command('demo')
      .description('Start what `warden dev` starts, then walk through the example agents: policy, budgets, approvals, pause, rollback, audit')
      .option('--model <model>', 'scripted (the recorded walkthrough) or local (the example agents on a small model on this CPU, fetched on first use)', 'scripted')
      .option('--headless', 'no Temporal Web UI')
      .option('--exit', 'stop when the walkthrough is done instead of waiting for Ctrl-C'),
  ).action(async (opts: DemoOptions) => {
    if (!runsFromClone()) {
      throw new CliError(
        "warden demo walks through Warden's example agents, which come with a clone of its repository (npm install && npm start there), not with the npm package; in your project, 'warden dev' runs your own agents",
      );
    }
    if (opts.model !== 'scripted' && opts.model !== 'local') throw new UsageError(`--model ${String(opts.model)}: use scripted or local`);
    const local = opts.model === 'local';
    if (local) {
      // Fetched before anything starts, with its progress; the worker then loads it on the first call.
      await ensureLocalModel('smollm2');
      // The example agents read it when the worker loads them (examples/model.ts).
      process.env.WARDEN_MODEL = 'local:smollm2';
    }
    const home = wardenHome();
    // A freshly seeded shop each time, so the refunds the scripts ask for always fit their orders.
    if (!process.env.WARDEN_SHOP_DB) {
      const shopFile = path.join(home, 'demo-shop.db');
      for (const suffix of ['', '-wal', '-shm']) rmSync(shopFile + suffix, { force: true });
      process.env.WARDEN_SHOP_DB = shopFile;
    }
    const shopFile = exampleShop().openShop(process.env.WARDEN_SHOP_DB);

    out('Warden demo: governed agent runs on Temporal');
    out('starting the Temporal dev server, a worker and the web inbox…');
    // Installed before the stack's worker starts: a tool's expected failure stays in the run's story, out of the console.
    installRuntime('WARN', undefined, writtenInDemo);
    const env = await startDevEnvironment({ agents: exampleAgentsPath(), policies: examplePoliciesPath(), headless: opts.headless, port: opts.port, uiPort: opts.uiPort, inboxPort: opts.inboxPort });
    const { stack, client, channels } = env;
    // Every call of the walkthrough runs under this signal: stopping cancels the calls still waiting
    // (a run's result is a long poll) before the connection closes, which would otherwise retry them
    // on a closed channel and crash. Then the worker drains, the connections close, the server stops.
    const calls = new AbortController();
    // The client adds a listener to it for each call and keeps it: a whole walkthrough's worth, not a leak.
    setMaxListeners(0, calls.signal);
    let stopping: Promise<void> | null = null;
    const stop = () =>
      (stopping ??= (async () => {
        calls.abort();
        await stack.worker.shutdown();
        await env.shutdown();
      })());
    onShutdownSignal(stop, 'stopping the inbox, the worker and the Temporal dev server', INTERRUPTED_EXIT);
    try {
      await client.client.connection.withAbortSignal(calls.signal, async () => {
        describeStack(stack).forEach((l) => out(l));
        channels.lines.forEach((l) => out(l));
        out(`  shop        ${shopFile} (example SQLite shop, freshly seeded)`);
        const demo = new Demo(client, stack, channels, new DecisionSigner(loadSigningKey(stack.cliKeyFile)), calls.signal);
        if (local) {
          out('  model       local:smollm2 (SmolLM2 135M on this CPU): its proposals are its own; the policy decides each');
          await walkOnLocalModel(demo);
          await demo.verify();
        } else {
          await demo.refundInScope();
          await demo.procurement();
          await demo.approval();
          await demo.pauseResume();
          await demo.rollback();
          await demo.delegation();
          await demo.verify();
          if (!opts.exit) demo.watch(await demo.yourTurn());
        }
        demo.summary(!opts.exit);
      });
    } catch (err) {
      // Stopped on Ctrl-C: what failed is the call it cancelled; the signal's handler exits once all is stopped.
      if (stopping) return stop();
      await stop();
      throw err;
    }
    if (opts.exit) return stop();
    out();
    out('Ctrl-C stops the inbox, the worker and the Temporal dev server.');
    await stack.worker.done.catch(() => undefined);
  });
}
