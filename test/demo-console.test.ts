/**
 * `warden demo` as a reader runs it (`npm start`): what it prints is the walkthrough, not the
 * worker's logs. A tool's expected failure shows in the run's story only, and Ctrl-C stops it in
 * order and exits 130 without a gRPC error or a stack trace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../src/dev-server/free-port';
import * as shop from '../examples/shop/store';
import { repoRoot, wardenBin } from './fixtures/run-cli';
import { eventually } from './helpers';

interface DemoProcess {
  /** Resolves with the first match of `pattern` in stdout (everything printed so far is matched). */
  printed(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Ctrl-C: resolves with the exit code. */
  interrupt(): Promise<number | null>;
  kill(): void;
}

const homes: string[] = [];
const running: DemoProcess[] = [];

/** `warden demo --headless` on free ports, in a WARDEN_HOME of its own. */
async function startDemo(flags: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ demo: DemoProcess; env: NodeJS.ProcessEnv }> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'warden-demo-console-'));
  homes.push(home);
  const [port, inboxPort] = await freePorts(2);
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: home, WARDEN_TASK_QUEUE: `demo-console-${Math.random().toString(36).slice(2, 8)}` };
  delete env.WARDEN_SHOP_DB;
  Object.assign(env, extraEnv);
  const child = spawn(process.execPath, [wardenBin, 'demo', '--headless', ...flags, '--port', String(port), '--inbox-port', String(inboxPort)], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const demo: DemoProcess = {
    printed: (pattern, timeoutMs = 150_000) =>
      eventually(
        async () => {
          const match = pattern.exec(stdout);
          if (match) return match;
          if (child.exitCode !== null) throw new Error(`warden demo exited with ${child.exitCode} before printing ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`);
          return undefined;
        },
        timeoutMs,
        `warden demo to print ${pattern}`,
      ),
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    interrupt: () => {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  running.push(demo);
  return { demo, env };
}

afterAll(() => {
  for (const demo of running) demo.kill();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

test('Ctrl-C once the first run is printed: stops in order and exits 130, no gRPC error, no stack trace', async () => {
  const { demo } = await startDemo();
  await demo.printed(/^ {2}run: {2}warden\/refund-agent\/demo-\S+-scope$/m);
  const code = await demo.interrupt();
  expect(demo.stderr()).not.toContain('Channel has been shut down');
  expect(demo.stderr()).not.toMatch(/^\s+at /m);
  expect(demo.stderr()).toBe('');
  expect(code).toBe(130);
  expect(demo.stdout()).toMatch(/stopping the inbox, the worker and the Temporal dev server…\nstopped\n$/);
}, 240_000);

test('a tool that fails during the walkthrough: the story shows it, the worker does not print its warning and stack trace', async () => {
  // ORD-1003 ($1,249) already refunded in full: scene 3's $450 refund, once approved, fails in the tool.
  const shopFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-demo-shop-')), 'shop.db');
  homes.push(path.dirname(shopFile));
  shop.openShop(shopFile);
  shop.issueRefund({ orderId: 'ORD-1003', amount: 1249, reason: 'refunded before the demo', idempotencyKey: 'demo-console-full-refund' });
  shop.closeShop();
  const { demo } = await startDemo(['--exit'], { WARDEN_SHOP_DB: shopFile });
  const code = await demo.exited;
  expect(demo.stdout()).toMatch(/issue_refund failed: [^\n]*a refund of \$450\.00 would exceed order ORD-1003/);
  // The SDK's warning for the failed activity, with its stack trace, is not in the demo's console.
  expect(demo.stderr()).not.toContain('Activity failed');
  expect(demo.stdout()).not.toContain('Activity failed');
  expect(demo.stderr()).toBe('');
  expect(code).toBe(0);
}, 240_000);
