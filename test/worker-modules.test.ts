/**
 * `warden worker` loads what a worker needs and nothing else: not `warden dev`'s web inbox (Hono),
 * Slack's Bolt or Express, not the MCP SDK while no agent defines MCP tools, and no AI provider the
 * worker has no key for. Each would lengthen every restart (docs/operations.md#worker-start-and-logs).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, wardenBin } from './fixtures/run-cli';
import { settings } from './helpers';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-worker-modules-'));
const fixture = path.join(repoRoot, 'test', 'fixtures', 'custom-agents');

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Preloaded into the worker: as the process exits, writes every module it loaded (one path a line) to `<dir>/loaded.<pid>`. */
const RECORDER = `
const { writeFileSync } = require('node:fs');
const path = require('node:path');
process.on('exit', () => writeFileSync(path.join(${JSON.stringify(tmp)}, 'loaded.' + process.pid), Object.keys(require.cache).join('\\n')));
`;

/** Runs `warden worker` (the suite's prebuilt bundle) until its ready line, stops it, and returns the modules it had loaded. */
async function modulesOfWorker(): Promise<string[]> {
  const recorder = path.join(tmp, 'recorder.js');
  writeFileSync(recorder, RECORDER);
  const bundle = process.env.WARDEN_TEST_WORKFLOW_BUNDLE;
  if (!bundle) throw new Error('WARDEN_TEST_WORKFLOW_BUNDLE is not set: run this file through jest (test/global-setup.ts bundles the workflows)');
  const { address, namespace } = settings();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    WARDEN_HOME: path.join(tmp, 'home'),
    WARDEN_TASK_QUEUE: `worker-modules-${Math.random().toString(36).slice(2, 10)}`,
    NOTES_DIR: path.join(tmp, 'notes'),
  };
  // A worker with these would rightly load the provider or the Slack client.
  for (const name of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'SLACK_BOT_TOKEN', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'NODE_OPTIONS']) delete env[name];
  // Node flags of its own keep the command in this one process (bin/worker-process.js), where the recorder runs.
  const child = spawn(process.execPath, ['--require', recorder, wardenBin, 'worker', '--agents', path.join(fixture, 'index.ts'), '--policies', path.join(fixture, 'policies'), '--workflow-bundle', bundle], {
    cwd: repoRoot,
    env,
    stdio: 'pipe',
  });
  let output = '';
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden worker was not ready in 150 s: ${output}`)), 150_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`warden worker exited with ${code} before it was ready: ${output}`));
    });
  });
  child.kill('SIGTERM');
  expect(await closed).toBe(0);
  const written = readdirSync(tmp).filter((f) => f.startsWith('loaded.'));
  expect(written).toHaveLength(1);
  return readFileSync(path.join(tmp, written[0] ?? ''), 'utf8').split('\n');
}

test('warden worker loads no inbox, Slack, Express, MCP or AI provider module it does not use', async () => {
  const loaded = await modulesOfWorker();
  const packages = (name: string) => loaded.filter((file) => file.includes(`${path.sep}node_modules${path.sep}${name}${path.sep}`));
  // The recorder saw the worker's modules: the Temporal worker, the agents module, Warden's CLI.
  expect(packages('@temporalio/worker').length).toBeGreaterThan(0);
  expect(loaded).toContain(path.join(fixture, 'index.ts'));
  expect(loaded).toContain(path.join(repoRoot, 'src', 'cli', 'dev.ts'));
  for (const unused of ['hono', '@slack/bolt', '@slack/web-api', 'express', '@modelcontextprotocol/sdk', '@ai-sdk/openai', '@ai-sdk/anthropic', '@ai-sdk/openai-compatible']) {
    expect({ unused, loaded: packages(unused) }).toEqual({ unused, loaded: [] });
  }
  // Of src/approvals, a worker needs the signing keys it trusts, not the inbox, console or Slack app.
  for (const part of ['inbox', 'console', 'slack']) {
    expect(loaded.filter((file) => file.includes(path.join('src', 'approvals', part) + path.sep))).toEqual([]);
  }
}, 200_000);
