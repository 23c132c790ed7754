/**
 * The operations console at fleet size (`npm run bench:console [real runs]`): 10,000 runs' audit
 * trails written straight into a SQLite run store (twelve events each, spread over the last day,
 * five agents), plus K real runs (default 200) started on a dev server so visibility has runs to
 * list. Then, over HTTP as a signed-in person: the runs list's first page (one visibility page
 * and one batched store read) and the fleet charts over a day (two SQL aggregates over the whole
 * audit table), median of five each, in ms. Targets: ≤ 1 s each on this machine.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { z } from 'zod';
import { AgentRegistry, defineAgent, defineTool } from '../src/agents';
import { DecisionSigner, createInboxServer, hashPassword, loadUsersFile, localUsersAuthenticator } from '../src/approvals';
import { WardenClient } from '../src/client';
import { startDevServer } from '../src/dev-server';
import { emptyAuditHead, generateSigningKey, nextAuditEvent, parsePolicy, type AuditEvent, type AuditEventType } from '../src/governance';
import { createSqliteStore } from '../src/store';
import { createWardenWorker } from '../src/worker';
import { inBatches, indices, median } from './figures';

const SYNTHETIC_RUNS = 10_000;
const AGENTS = ['billing', 'support', 'procurement', 'refunds', 'research'];

const echo = defineTool({ name: 'echo', description: 'Echoes', input: z.object({ text: z.string() }), run: ({ text }) => ({ echoed: text }) });
const agent = defineAgent({ name: 'bench-console', instructions: 'Bench.', model: 'scripted', tools: [echo] });
const policy = parsePolicy({ agent: 'bench-console', tools: { echo: {} }, rules: [{ id: 'allow', decision: 'allow' }] }, 'bench policy');

/** One synthetic run's trail: a model turn, an allowed call, one that waited for approval, a result, an outcome. */
function syntheticTrail(i: number, startMs: number): AuditEvent[] {
  const at = (offsetS: number) => new Date(startMs + offsetS * 1000).toISOString();
  const outcome = i % 20 === 0 ? 'budget_exhausted' : i % 11 === 0 ? 'failed' : 'completed';
  const events: [AuditEventType, Record<string, unknown>, string][] = [
    ['run_started', { agent: AGENTS[i % AGENTS.length], requester: `user${i % 50}`, policyVersion: 'pv_bench' }, at(0)],
    ['model_turn', { step: 1, inputTokens: 800 + (i % 200), outputTokens: 60, costUsd: 0.0021, calls: ['lookup', 'refund'] }, at(1)],
    ['call_proposed', { callId: 'c1', tool: 'lookup', args: {} }, at(1)],
    ['policy_decision', { callId: 'c1', tool: 'lookup', decision: 'allow', ruleId: 'reads' }, at(1)],
    ['call_proposed', { callId: 'c2', tool: 'refund', args: {} }, at(1)],
    ['policy_decision', { callId: 'c2', tool: 'refund', decision: i % 7 === 0 ? 'deny' : 'require_approval', ruleId: 'refunds' }, at(1)],
    ['approval_requested', { approvalId: `a${i}`, callId: 'c2', tool: 'refund' }, at(1)],
    ['approval_decided', { approvalId: `a${i}`, decision: 'approved', by: 'alice' }, at(20 + (i % 300))],
    ['tool_started', { callId: 'c1', tool: 'lookup' }, at(21 + (i % 300))],
    ['tool_succeeded', { callId: 'c1', tool: 'lookup', attempts: 1, summary: '{}' }, at(22 + (i % 300))],
    ['model_turn', { step: 2, inputTokens: 1200, outputTokens: 40, costUsd: 0.0025, calls: [] }, at(23 + (i % 300))],
    ['run_finished', { status: outcome, steps: 2, toolCalls: 2 }, at(24 + (i % 300))],
  ];
  let head = emptyAuditHead();
  return events.map(([type, data, when]) => {
    const e = nextAuditEvent(head, type, data, when);
    head = { seq: e.seq, hash: e.hash };
    return e;
  });
}

async function timed(fn: () => Promise<void>, rounds = 5): Promise<number> {
  const ms: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return Math.round(median(ms));
}

async function main() {
  const realRuns = Number(process.argv[2] ?? 200);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-console-'));
  const store = createSqliteStore(path.join(dir, 'runs.db'));

  let t = performance.now();
  const now = Date.now();
  for (let from = 0; from < SYNTHETIC_RUNS; from += 500) {
    await Promise.all(indices(Math.min(500, SYNTHETIC_RUNS - from)).map((j) => {
      const i = from + j;
      return store.appendAudit(`warden/${AGENTS[i % AGENTS.length]}/bench-${i}`, syntheticTrail(i, now - 86_400_000 + Math.floor((i / SYNTHETIC_RUNS) * 86_000_000)));
    }));
  }
  const insertMs = Math.round(performance.now() - t);

  const server = await startDevServer({ headless: true, log: () => {} });
  const connection = await NativeConnection.connect({ address: server.address });
  const worker = await createWardenWorker({
    registry: new AgentRegistry([agent], [{ policy, source: 'bench' }]),
    store,
    connection,
    settings: { address: server.address, namespace: 'default' },
    taskQueue: 'bench-console',
    logger: pino({ level: 'silent' }),
    slack: null,
    keyring: {},
  });
  const client = await WardenClient.connect({ address: server.address, namespace: 'default' }, 'bench-console');
  const key = { keyId: 'bench-web', ...generateSigningKey() };
  writeFileSync(path.join(dir, 'users.yaml'), `users:\n  - id: olga\n    password: "${await hashPassword('olga-pw-123')}"\n    groups: [operators]\n`);
  const inbox = await createInboxServer({ client, store, signer: new DecisionSigner(key), auth: localUsersAuthenticator(loadUsersFile(path.join(dir, 'users.yaml'))), logger: pino({ level: 'silent' }) });

  await worker.runUntil(async () => {
    t = performance.now();
    const script = [{ toolCalls: [{ name: 'echo', args: { text: 'hi' } }] }, { text: 'done' }];
    const ids = await inBatches(indices(realRuns), (i) => client.startRun({ agent: 'bench-console', goal: 'echo', requester: 'carol', key: `real-${i}`, script }));
    await inBatches(ids, (id) => client.result(id));
    while ((await client.client.workflow.count(`WardenStatus = 'completed'`)).count < realRuns) await new Promise((r) => setTimeout(r, 200));
    const realMs = Math.round(performance.now() - t);

    const login = await fetch(`${inbox.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'olga', password: 'olga-pw-123', next: '/console/runs' }).toString(),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(',').map((c) => c.split(';')[0]).filter((c) => c?.includes('warden_session')).join('; ');
    if (!cookie) throw new Error(`bench: sign-in failed (${login.status})`);
    const get = async (url: string, expect: string) => {
      const res = await fetch(`${inbox.url}${url}`, { headers: { cookie } });
      const body = await res.text();
      if (res.status !== 200 || !body.includes(expect)) throw new Error(`bench: ${url} answered ${res.status} without "${expect}"`);
    };
    const listMs = await timed(() => get('/console/runs', 'table class="runs"'));
    const listAgentMs = await timed(() => get('/console/runs?agent=bench-console&status=completed', 'table class="runs"'));
    const chartsMs = await timed(() => get('/console/charts?range=24h&bucket=hour', 'data-chart="cost"'));
    const chartsAgentMs = await timed(() => get(`/console/charts?range=24h&bucket=hour&agent=${AGENTS[0] ?? ''}`, 'data-chart="cost"'));
    const range = { from: new Date(now - 86_400_000).toISOString(), to: new Date(now + 3600_000).toISOString(), bucket: 'hour' as const };
    const aggregateMs = await timed(async () => {
      await Promise.all([store.fleetActivity(range), store.approvalWaits(range)]);
    });
    const events = (await store.fleetActivity(range)).reduce((n, r) => n + r.count, 0);
    console.log(
      JSON.stringify({
        syntheticRuns: SYNTHETIC_RUNS,
        auditRows: SYNTHETIC_RUNS * 12,
        countedEventsInDay: events,
        realRuns,
        insertMs,
        realRunsMs: realMs,
        runsFirstPageMs: listMs,
        runsFilteredPageMs: listAgentMs,
        chartsDayMs: chartsMs,
        chartsDayOneAgentMs: chartsAgentMs,
        storeAggregatesMs: aggregateMs,
        target: 'each page ≤ 1000 ms',
      }),
    );
  });
  await inbox.close();
  await client.close();
  await store.close();
  await server.stop();
}
void main();
