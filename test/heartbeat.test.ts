/**
 * Fast recovery: Warden heartbeats a running tool and model call, with a heartbeat timeout of
 * seconds, so when the worker running one is killed, another worker retries it within seconds,
 * not after the start-to-close timeout (1 minute for a tool, 5 for the model call).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WardenClient } from '../src/client';
import { parsePolicy } from '../src/governance';
import type { AttemptLine } from './fixtures/operations/recovery-agents';
import { killWorker, startRecoveryWorker, type WorkerProcess } from './fixtures/operations/worker-processes';
import { eventually, settings, testPayloadCodec, testPayloadKeysFile } from './helpers';

/** Well under the 1-minute start-to-close timeout of a tool, with room for a loaded machine. */
const RECOVERED_WITHIN_MS = 30_000;

const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-heartbeat-'));
const attemptsFile = path.join(dir, 'attempts.jsonl');
const workers: WorkerProcess[] = [];
let client: WardenClient;
let env: NodeJS.ProcessEnv;
let model: Server;
/** Requests the model server got: which worker, when; the first is held unanswered. */
const modelRequests: { worker: string; at: number }[] = [];

function attempts(): AttemptLine[] {
  let text = '';
  try {
    text = readFileSync(attemptsFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AttemptLine);
}

/** An OpenAI-compatible chat completion answer. */
function completion(text: string): string {
  return JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: 'slow-model',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  });
}

beforeAll(async () => {
  writeFileSync(attemptsFile, '');
  // The model: holds the first request it gets (the worker making it is killed), answers the next at once.
  model = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      modelRequests.push({ worker: req.url?.split('/')[1] ?? '?', at: Date.now() });
      if (modelRequests.length === 1) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(completion('answered after the retry'));
    });
  });
  await new Promise<void>((resolve) => model.listen(0, '127.0.0.1', resolve));
  const { address, namespace } = settings();
  const taskQueue = `heartbeat-${Math.random().toString(36).slice(2, 10)}`;
  env = {
    ...process.env,
    WARDEN_STORE: path.join(dir, 'warden.db'),
    OPS_TASK_QUEUE: taskQueue,
    OPS_ATTEMPTS_FILE: attemptsFile,
    OPS_MODEL_URL: `http://127.0.0.1:${(model.address() as AddressInfo).port}`,
    WARDEN_TEST_TEMPORAL_ADDRESS: address,
    WARDEN_TEST_NAMESPACE: namespace,
    WARDEN_PAYLOAD_KEYS: testPayloadKeysFile(),
  };
  // One after the other: both open the new SQLite store, and the first creates its tables.
  workers.push(await startRecoveryWorker('a', env));
  workers.push(await startRecoveryWorker('b', env));
  client = await WardenClient.connect({ address, namespace }, taskQueue, { payloadCodec: testPayloadCodec() });
}, 200_000);

afterAll(async () => {
  for (const w of workers) {
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await w.exited;
  }
  await client?.close();
  model?.closeAllConnections();
  await new Promise((resolve) => model?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const alive = (): WorkerProcess[] => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);

test('a worker killed inside a tool call: another worker retries the call within seconds', async () => {
  const policy = parsePolicy({ agent: 'hold-agent', tools: { hold: {} }, rules: [{ id: 'allow', decision: 'allow', reason: 'test' }] }, 'hold policy');
  const runId = await client.startRun({
    agent: 'hold-agent',
    goal: 'hold once',
    requester: 'carol',
    policy,
    // The first attempt would hold for 50 s, inside the tool's 1-minute start-to-close timeout.
    script: [{ toolCalls: [{ name: 'hold', args: { holdMs: 50_000 } }] }, { text: 'held' }],
  });
  const first = await eventually(async () => attempts().find((a) => a.event === 'started' && a.attempt === 1), 60_000, 'the first attempt of the tool');
  const victim = workers.find((w) => w.id === first.worker);
  if (!victim) throw new Error(`no worker ${first.worker}`);
  const killedAt = await killWorker(victim);
  const retry = await eventually(async () => attempts().find((a) => a.event === 'started' && a.attempt === 2), 90_000, 'the retry of the tool');
  const recoveryMs = retry.at - killedAt;
  console.log(`heartbeat recovery: a tool call lost with its worker was retried ${recoveryMs} ms after the kill (start-to-close timeout: 60000 ms)`);
  expect(retry.worker).not.toBe(victim.id);
  expect(retry.key).toBe(first.key);
  expect(recoveryMs).toBeLessThan(RECOVERED_WITHIN_MS);
  expect(await client.result(runId)).toMatchObject({ status: 'completed', text: 'held', toolCalls: 1 });
}, 200_000);

test('a worker killed inside a model call: another worker asks the model again within seconds', async () => {
  // The first test killed one worker; one more joins so a worker survives this kill too.
  expect(alive()).toHaveLength(1);
  workers.push(await startRecoveryWorker('c', env));
  const policy = parsePolicy({ agent: 'slow-model-agent', tools: {}, rules: [{ id: 'allow', decision: 'allow', reason: 'test' }] }, 'slow model policy');
  const runId = await client.startRun({ agent: 'slow-model-agent', goal: 'answer', requester: 'carol', policy });
  const first = await eventually(async () => modelRequests[0], 60_000, 'the first model request');
  const victim = workers.find((w) => w.id === first.worker);
  if (!victim) throw new Error(`no worker ${first.worker}`);
  const killedAt = await killWorker(victim);
  const retry = await eventually(async () => modelRequests[1], 120_000, 'the model call asked again');
  const recoveryMs = retry.at - killedAt;
  console.log(`heartbeat recovery: a model call lost with its worker was made again ${recoveryMs} ms after the kill (start-to-close timeout: 300000 ms)`);
  expect(retry.worker).not.toBe(victim.id);
  expect(recoveryMs).toBeLessThan(RECOVERED_WITHIN_MS);
  expect(await client.result(runId)).toMatchObject({ status: 'completed', text: 'answered after the retry' });
}, 200_000);
