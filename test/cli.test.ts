/**
 * The `warden` command as people run it: `node bin/warden.js …` in a child process, against the
 * suite's dev server. Refund-agent runs are served by a worker in this process (the example agent
 * and its policy file); the custom notes agent by `warden worker --agents <fixture>` in a child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadKeyring } from '../src/approvals/signing-keys';
import { parsePolicyText } from '../src/governance';
import { freePorts } from '../src/dev-server/free-port';
import { createSqliteStore } from '../src/store';
import type { PendingApproval, RunOutcome, RunStatusView } from '../src/workflows/run-types';
import { refundAgent } from '../examples/refund-agent';
import { runCli, type CliResult } from './fixtures/run-cli';
import { createTestBed, eventually, settings, type TestBed } from './helpers';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'warden.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-cli-'));
const fixture = path.join(root, 'test', 'fixtures', 'custom-agents');
// The refund tools write to the example shop: keep it out of the working tree.
process.env.WARDEN_SHOP_DB = path.join(tmp, 'shop.db');

type Result = CliResult;

/** Runs the CLI without blocking this process (the in-process worker must keep serving meanwhile). */
function cli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Result> {
  return runCli(args, { ...process.env, ...env }, timeoutMs);
}

function json<T>(r: Result): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const address = settings().address;
const unique = Math.random().toString(36).slice(2, 8);

// Refund agent: in-process worker.
const refundHome = path.join(tmp, 'refund-home');
const refundQueue = `cli-refund-${unique}`;
const refundEnv = { TEMPORAL_ADDRESS: address, WARDEN_HOME: refundHome, WARDEN_TASK_QUEUE: refundQueue };

// Notes agent: `warden worker` child.
const notesHome = path.join(tmp, 'notes-home');
const notesQueue = `cli-notes-${unique}`;
const notesDir = path.join(tmp, 'notes');
const keyFile = path.join(tmp, 'keys', 'tester.json');
const erinKeyFile = path.join(tmp, 'keys', 'cli-erin.json');
const opsKeyFile = path.join(tmp, 'keys', 'cli-ops.json');
const trustedFile = path.join(tmp, 'trusted-keys.json');
const notesEnv = { TEMPORAL_ADDRESS: address, WARDEN_HOME: notesHome, WARDEN_TASK_QUEUE: notesQueue };

let bed: TestBed;
let notesWorker: ChildProcess | null = null;
let notesWorkerOutput = '';

function writeJson(name: string, value: unknown): string {
  const file = path.join(tmp, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

const noteTurn = (name: string, text: string) => ({ toolCalls: [{ name: 'write_note', args: { name, text } }] });
const sharedNoteScript = (name: string) => writeJson(`${name}.json`, [noteTurn(name, `shared note ${name}`), { text: 'done' }]);

/** Waits for a notes run to show its approval through `warden approvals --json` (visibility is eventually consistent). */
async function approvalOf(runId: string): Promise<PendingApproval> {
  return eventually(async () => json<PendingApproval[]>(await cli(['approvals', '--json'], notesEnv)).find((a) => a.runId === runId), 30_000, `approval of ${runId}`);
}

async function statusOf(runId: string, env: Record<string, string>): Promise<RunStatusView> {
  return json<RunStatusView>(await cli(['status', runId, '--json'], env));
}

/** The grant `warden keys generate` prints for the trusted-keys file, as the workers parse it. */
function printedGrant(r: Result): Record<string, unknown> {
  expect(r.code).toBe(0);
  const line = /^ {2}(\{.*\})$/m.exec(r.stdout)?.[1];
  if (!line) throw new Error(`no grant line in:\n${r.stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Starts `warden worker` with the notes agent on `taskQueue` and resolves once it says it is ready. */
async function startNotesWorker(taskQueue: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; output: string }> {
  const bundle = process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '';
  const child = spawn(process.execPath, [bin, 'worker', '--agents', path.join(fixture, 'index.ts'), '--policies', path.join(fixture, 'policies'), '--workflow-bundle', bundle], {
    cwd: root,
    env: { ...process.env, ...notesEnv, WARDEN_TASK_QUEUE: taskQueue, NOTES_DIR: notesDir, WARDEN_TRUSTED_KEYS: trustedFile, WARDEN_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden worker did not start: ${output}`)), 60_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (output.includes('worker ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`warden worker exited with ${code}: ${output}`)));
  });
  return { child, output };
}

/** The processes `pid` started (Linux). */
function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Whether `pid` still runs (an exited process nobody has reaped yet is a zombie, state Z). */
function processRuns(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

beforeAll(async () => {
  // A test desk that may assert anyone (the tests play several approvers), and erin's own key, which speaks only for her.
  const tester = printedGrant(await cli(['keys', 'generate', '--id', 'tester', '--out', keyFile, '--any-identity'], {}));
  const erin = printedGrant(await cli(['keys', 'generate', '--id', 'cli-erin', '--out', erinKeyFile, '--person', 'erin', '--groups', 'editors'], {}));
  expect(erin).toEqual({ 'cli-erin': { publicKey: expect.stringMatching(/^[0-9a-f]{64}$/) as string, channel: 'cli', people: { erin: ['editors'] } } });
  // The operators' key: resume, rollback and policy apply count only signed by a key with the role.
  const ops = printedGrant(await cli(['keys', 'generate', '--id', 'cli-ops', '--out', opsKeyFile, '--person', 'ops', '--roles', 'operator,policy-admin'], {}));
  expect(ops['cli-ops']).toMatchObject({ people: { ops: [] }, roles: ['operator', 'policy-admin'] });
  writeFileSync(trustedFile, JSON.stringify({ ...tester, ...erin, ...ops }, null, 2));
  const keyring = loadKeyring(trustedFile);

  const policyFile = path.join(root, 'policies', 'refund-agent.yaml');
  bed = await createTestBed({
    agents: [refundAgent],
    policies: [parsePolicyText(readFileSync(policyFile, 'utf8'), policyFile)],
    storePath: path.join(refundHome, 'warden.db'),
    taskQueue: refundQueue,
    keyring,
  });

  const started = await startNotesWorker(notesQueue);
  notesWorker = started.child;
  const output = (notesWorkerOutput = started.output);
  expect(output).toContain('agents: notes-agent');
  expect(output).toContain(`3 trusted key(s) from ${trustedFile}, re-read when it changes`);
}, 120_000);

afterAll(async () => {
  const child = notesWorker;
  if (child && child.exitCode === null) {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    // Ctrl-C / SIGTERM drains the worker and exits cleanly.
    expect(await exited).toBe(0);
  }
  await bed?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('warden run and status', () => {
  let runId = '';

  test('run --wait --json starts the refund agent on a script and prints its outcome', async () => {
    const script = path.join(root, 'examples', 'scripts', 'refund-out-of-scope.json');
    const r = await cli(['run', 'refund-agent', '--goal', 'Order ORD-1001 was late; refund what is fair', '--script', script, '--requester', 'dana', '--key', `late-${unique}`, '--wait', '--json'], refundEnv);
    const { runId: id, outcome } = json<{ runId: string; outcome: RunOutcome }>(r);
    runId = id;
    expect(runId).toBe(`warden/refund-agent/late-${unique}`);
    expect(outcome).toMatchObject({ status: 'completed', steps: 4, toolCalls: 2 });
    expect(outcome.policyVersion).toMatch(/^pv_/);
    expect(outcome.text).toContain('refunded $25.00');
    const decisions = (await bed.store.readAudit(runId)).filter((e) => e.type === 'policy_decision').map((e) => `${String(e.data.tool)}:${String(e.data.decision)}`);
    expect(decisions).toEqual(['lookup_order:allow', 'issue_refund:allow', 'change_credit_limit:deny']);
  });

  // The notes agent, not the refund agent: refunds here would use up the shop's orders that the demo below refunds.
  test('run signs the start with the CLI key when there is one, so the requester is verified', async () => {
    const script = writeJson('say-done.json', [{ text: 'done' }]);
    const signed = await cli(['run', 'notes-agent', '--goal', 'a signed start', '--script', script, '--requester', 'dana', '--signing-key', keyFile, '--wait', '--json'], notesEnv);
    expect(signed.stderr).toBe('');
    const { runId: verifiedRun } = json<{ runId: string }>(signed);
    expect((await statusOf(verifiedRun, notesEnv)).requesterVerified).toBe(true);

    // notesEnv's home has no keys/cli.json: the run starts, unverified, and the CLI says so in one line.
    const unsigned = await cli(['run', 'notes-agent', '--goal', 'an unsigned start', '--script', script, '--requester', 'dana', '--wait', '--json'], notesEnv);
    const { runId: unverifiedRun } = json<{ runId: string }>(unsigned);
    expect(unsigned.stderr.trim()).toBe(`note: ${unverifiedRun} started with an unverified requester (no CLI signing key: --signing-key, WARDEN_SIGNING_KEY or ${path.join(notesHome, 'keys', 'cli.json')})`);
    expect((await statusOf(unverifiedRun, notesEnv)).requesterVerified).toBe(false);
  });

  test('a reused run key is one clear error line', async () => {
    const script = path.join(root, 'examples', 'scripts', 'refund-out-of-scope.json');
    const again = await cli(['run', 'refund-agent', '--goal', 'again', '--script', script, '--key', `late-${unique}`], refundEnv);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain(`warden/refund-agent/late-${unique} exists already`);
  });

  test('status prints the run for people and as JSON', async () => {
    const human = await cli(['status', runId], refundEnv);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/phase\s+finished/);
    expect(human.stdout).toContain('requested by dana');
    expect(human.stdout).toMatch(/outcome\s+completed: the agent finished/);
    const status = await statusOf(runId, refundEnv);
    expect(status).toMatchObject({ runId, agent: 'refund-agent', phase: 'finished', outcome: { status: 'completed' } });
  });

  test('status into a reader that stopped reading (| head) stops quietly, with the status of a closed pipe', async () => {
    // The reading end is closed before the command writes, as `warden status <run> | head -0` does.
    const child = spawn(process.execPath, [bin, 'status', runId], { cwd: root, env: { ...process.env, ...refundEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 141, stderr: '' });
  });

  test('a script that is not an array of turns is refused before anything starts', async () => {
    const bad = writeJson('bad-script.json', [{ toolCalls: [{ args: {} }] }, { txet: 'typo' }]);
    const r = await cli(['run', 'refund-agent', '--goal', 'x', '--script', bad], refundEnv);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`script ${bad}`);
    expect(r.stderr).toContain('[0].toolCalls[0].name');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test('usage errors exit 2 and unknown runs exit 1, each with one line', async () => {
    const usage = await cli(['pause'], refundEnv);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('give a run id or --agent');
    const missing = await cli(['status', 'warden/refund-agent/no-such-run'], refundEnv);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('error: no run warden/refund-agent/no-such-run in this namespace (check the id in the Temporal UI or with \'warden approvals\')');
  });
});

describe('a custom agent loaded with --agents', () => {
  test('its tool runs and has its effect; its own policy denies what it says', async () => {
    const script = writeJson('notes.json', [{ toolCalls: [{ name: 'write_note', args: { name: 'hello', text: 'written by a governed tool' } }] }, { toolCalls: [{ name: 'write_note', args: { name: 'secret-plan', text: 'x' } }] }, { text: 'noted' }]);
    const r = await cli(['run', 'notes-agent', '--goal', 'take notes', '--script', script, '--wait', '--json'], notesEnv);
    const { outcome } = json<{ runId: string; outcome: RunOutcome }>(r);
    expect(outcome).toMatchObject({ status: 'completed', toolCalls: 1, text: 'noted' });
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(notesDir, 'hello.txt'), 'utf8')).toBe('written by a governed tool');
    expect(existsSync(path.join(notesDir, 'secret-plan.txt'))).toBe(false);
  });

  test('run --wait exits with the code of its outcome (11 for budget_exhausted)', async () => {
    const loop = Array.from({ length: 40 }, (_, i) => ({ toolCalls: [{ name: 'write_note', args: { name: `n${i}`, text: 'x' } }] }));
    const r = await cli(['run', 'notes-agent', '--goal', 'too many notes', '--script', writeJson('many-notes.json', loop), '--wait', '--json'], notesEnv);
    expect(r.code).toBe(11);
    const { outcome } = JSON.parse(r.stdout) as { outcome: RunOutcome };
    expect(outcome.status).toBe('budget_exhausted');
  });
});

describe('the warden worker process', () => {
  const tuning = ['--max-semi-space-size=1', '--optimize-for-size'];

  test('runs in a Node process started with the memory settings, which SIGTERM reaches through the command', () => {
    const pid = notesWorker?.pid ?? 0;
    const [tuned, ...others] = childrenOf(pid);
    expect(others).toEqual([]);
    const argv = readFileSync(`/proc/${tuned}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(0, 3)).toEqual([process.execPath, ...tuning]);
    expect(argv).toContain('worker');
    const environ = readFileSync(`/proc/${tuned}/environ`, 'utf8').split('\0');
    expect(environ).toEqual(expect.arrayContaining(['MALLOC_ARENA_MAX=2', 'WARDEN_WORKER_TUNED=1']));
    expect(notesWorkerOutput).toContain(`; node ${tuning.join(' ')}, MALLOC_ARENA_MAX 2`);
    expect(notesWorkerOutput).toContain('; up to 100 runs in memory;');
    // afterAll sends SIGTERM to the command and expects exit code 0 from the drained worker.
  });

  test('drains and exits when the command that started it is killed', async () => {
    const { child } = await startNotesWorker(`${notesQueue}-orphan`);
    const [tuned] = childrenOf(child.pid ?? 0);
    expect(tuned).toBeDefined();
    child.kill('SIGKILL');
    await eventually(async () => !processRuns(tuned ?? 0), 30_000, 'the orphaned worker to exit');
  });

  test('WARDEN_WORKER_TUNING=off runs it in the process as started', async () => {
    const started = await startNotesWorker(`${notesQueue}-untuned`, { WARDEN_WORKER_TUNING: 'off', WARDEN_MAX_CACHED_RUNS: '250' });
    try {
      expect(childrenOf(started.child.pid ?? 0)).toEqual([]);
      expect(started.output).toContain('; node no flags, MALLOC_ARENA_MAX');
      expect(started.output).toContain('; up to 250 runs in memory;');
    } finally {
      const exited = new Promise<number | null>((resolve) => started.child.once('exit', resolve));
      started.child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  test('a cache smaller than the workflow-task slots, or not a number, is refused before anything starts', async () => {
    const flag = await cli(['worker', '--max-cached-runs', '10'], notesEnv);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("option '--max-cached-runs <n>' argument '10' is invalid. must be a whole number of runs, at least 40");
    const env = await cli(['worker'], { ...notesEnv, WARDEN_MAX_CACHED_RUNS: '1e3' });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain("value '1e3' from env 'WARDEN_MAX_CACHED_RUNS' is invalid");
    expect(`${flag.stdout}${env.stdout}`).not.toContain('worker ready');
  });
});

describe('warden policy check', () => {
  test('a bad file: exit 1, the message names the file and the path inside it', async () => {
    const bad = path.join(tmp, 'bad-policy.yaml');
    writeFileSync(bad, ['agent: refund-agent', 'tools:', '  issue_refund:', 'rules:', '  - id: r1', '    tools: [issue_refund]', '    decision: maybe', 'budgets:', '  maxSteps: 0', ''].join('\n'));
    const r = await cli(['policy', 'check', bad], {});
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain('rules[0].decision');
    expect(r.stderr).toContain('budgets.maxSteps');
  });

  test('a good file with --tool and --args prints the decision', async () => {
    const file = path.join(root, 'policies', 'refund-agent.yaml');
    const r = await cli(['policy', 'check', file, '--tool', 'issue_refund', '--args', '{"orderId":"ORD-1003","amount":450,"reason":"cracked"}', '--requester', 'dana'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid policy for refund-agent');
    expect(r.stdout).toContain('→ require_approval (rule large-refunds)');
    const small = json<{ decision: { decision: string; ruleId: string } }>(await cli(['policy', 'check', file, '--tool', 'issue_refund', '--args', '{"amount":20}', '--json'], {}));
    expect(small.decision).toMatchObject({ decision: 'allow', ruleId: 'small-refunds' });
    const badArgs = await cli(['policy', 'check', file, '--tool', 'issue_refund', '--args', '{amount'], {});
    expect(badArgs.code).toBe(2);
    expect(badArgs.stderr).toContain('--args is not valid JSON');
    // With the agents, the call is judged the workflow's way: the tool's schema first, then governCall.
    const examples = path.join(root, 'examples');
    const invalid = await cli(['policy', 'check', file, '--agents', examples, '--tool', 'issue_refund', '--args', '{"orderId":"ORD-1","amount":-5,"reason":"x"}'], {});
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('invalid arguments for issue_refund, nothing would run');
    const governed = json<{ decision: { decision: string; ruleId: string } }>(await cli(['policy', 'check', file, '--agents', examples, '--tool', 'issue_refund', '--args', '{"orderId":"ORD-1","amount":450,"reason":"cracked"}', '--json'], {}));
    expect(governed.decision).toMatchObject({ decision: 'require_approval', ruleId: 'large-refunds' });
  });
});

describe('approvals from the CLI, signed with a key the worker trusts', () => {
  test('a refused approve exits 1 with the run\'s reason; a valid one lets the run finish', async () => {
    const name = `shared-${unique}`;
    const runId = (await cli(['run', 'notes-agent', '--goal', 'share a note', '--requester', 'dana', '--script', sharedNoteScript(name)], notesEnv)).stdout.trim();
    expect(runId).toMatch(/^warden\/notes-agent\//);
    const approval = await approvalOf(runId);
    expect(approval).toMatchObject({ tool: 'write_note', ruleId: 'shared-notes', approvers: ['group:editors'] });

    const table = await cli(['approvals'], notesEnv);
    expect(table.stdout).toMatch(new RegExp(`${runId}\\s+${approval.approvalId}\\s+write_note`));

    const wrong = await cli(['approve', runId, approval.approvalId, '--as', 'bob', '--groups', 'sales', '--key', keyFile], notesEnv);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('approve refused by run');
    expect(wrong.stderr).toContain('bob is not among the approvers (group:editors)');

    const own = await cli(['approve', runId, approval.approvalId, '--as', 'dana', '--groups', 'editors', '--key', keyFile], notesEnv);
    expect(own.code).toBe(1);
    expect(own.stderr).toContain('four-eyes');

    const ok = await cli(['approve', runId, approval.approvalId, '--as', 'erin', '--groups', 'editors', '--comment', 'fine', '--key', keyFile], notesEnv);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`approval of ${approval.approvalId} accepted from erin: the call is now approved`);

    // The approval is decided: a second decision is not sent at all, and the CLI says why.
    const again = await cli(['approve', runId, approval.approvalId, '--as', 'frank', '--groups', 'editors', '--key', keyFile], notesEnv);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`error: approve not sent: Approval ${approval.approvalId} was already approved by erin. Nothing was sent.`);

    const done = await eventually(async () => (await statusOf(runId, notesEnv)).outcome, 20_000, 'the approved run to finish');
    expect(done).toMatchObject({ status: 'completed', toolCalls: 1 });
    expect(readFileSync(path.join(notesDir, `${name}.txt`), 'utf8')).toBe(`shared note ${name}`);
  });

  test("a person's own key speaks only for that person, and revoking it in the file stops it at once", async () => {
    const runId = (await cli(['run', 'notes-agent', '--goal', 'share a note', '--requester', 'dana', '--script', sharedNoteScript(`shared-erin-${unique}`)], notesEnv)).stdout.trim();
    const approval = await approvalOf(runId);

    const asFrank = await cli(['approve', runId, approval.approvalId, '--as', 'frank', '--key', erinKeyFile], notesEnv);
    expect(asFrank.code).toBe(1);
    expect(asFrank.stderr).toContain('key "cli-erin" may not assert frank');

    const moreGroups = await cli(['approve', runId, approval.approvalId, '--as', 'erin', '--groups', 'editors,admins', '--key', erinKeyFile], notesEnv);
    expect(moreGroups.code).toBe(1);
    expect(moreGroups.stderr).toContain('may not assert group(s) admins for erin');

    const revoke = await cli(['keys', 'revoke', 'cli-erin', '--trusted', trustedFile], {});
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toContain(`revoked cli-erin in ${trustedFile}`);
    // The worker was not restarted: it re-reads the file for this decision.
    const revoked = await cli(['approve', runId, approval.approvalId, '--as', 'erin', '--key', erinKeyFile], notesEnv);
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toContain('signing key "cli-erin" is revoked');

    const ok = await cli(['approve', runId, approval.approvalId, '--as', 'erin', '--groups', 'editors', '--key', keyFile], notesEnv);
    expect(ok.code).toBe(0);
    const done = await eventually(async () => (await statusOf(runId, notesEnv)).outcome, 20_000, 'the approved run to finish');
    expect(done).toMatchObject({ status: 'completed' });
  });

  test('without a key the CLI says where to get one', async () => {
    const r = await cli(['approve', 'warden/notes-agent/x', 'apr_x', '--as', 'erin'], { ...notesEnv, WARDEN_HOME: path.join(tmp, 'empty-home') });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no signing key');
  });
});

describe('operators: pause and resume by agent, policy apply, cancel', () => {
  let runId = '';

  test('pause --agent and resume --agent signal every running run of the agent', async () => {
    runId = (await cli(['run', 'notes-agent', '--goal', 'wait for an editor', '--requester', 'dana', '--script', sharedNoteScript(`shared-wait-${unique}`)], notesEnv)).stdout.trim();
    await approvalOf(runId);

    const paused = await cli(['pause', '--agent', 'notes-agent', '--reason', 'maintenance', '--by', 'ops'], notesEnv);
    expect(paused.code).toBe(0);
    expect(paused.stdout).toContain(`paused ${runId}`);
    expect(paused.stdout).toMatch(/signalled [1-9]\d* running run\(s\) of notes-agent/);
    await eventually(async () => (await statusOf(runId, notesEnv)).paused, 10_000, 'paused');

    // Unsigned (no CLI key in notesEnv's home): the run refuses it and stays paused.
    const unsigned = await cli(['resume', '--agent', 'notes-agent', '--by', 'ops'], notesEnv);
    expect(unsigned.code).toBe(0);
    await eventually(async () => {
      const events = json<{ events: { type: string; data: Record<string, unknown> }[] }>(await cli(['audit', runId, '--json'], notesEnv)).events;
      return events.find((e) => e.type === 'resume_refused');
    }, 10_000, 'the unsigned resume refused');
    expect((await statusOf(runId, notesEnv)).paused).toBe(true);
    const resumed = await cli(['resume', '--agent', 'notes-agent', '--by', 'ops'], { ...notesEnv, WARDEN_SIGNING_KEY: opsKeyFile });
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`resumed ${runId}`);
    await eventually(async () => !(await statusOf(runId, notesEnv)).paused, 10_000, 'resumed');
    const trail = json<{ events: { type: string; data: Record<string, unknown> }[] }>(await cli(['audit', runId, '--json'], notesEnv)).events;
    expect(trail.filter((e) => e.type === 'paused' || e.type === 'resumed').map((e) => `${e.type}:${String(e.data.by)}`)).toEqual(['paused:ops', 'resumed:ops']);
  });

  test('policy apply of an invalid file stores nothing and reaches no run', async () => {
    const bad = path.join(tmp, 'notes-bad.yaml');
    writeFileSync(bad, readFileSync(path.join(fixture, 'policies', 'notes-agent.yaml'), 'utf8').replace('decision: deny', 'decision: never'));
    const r = await cli(['policy', 'apply', bad], notesEnv);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain('rules[0].decision');
    const store = createSqliteStore(path.join(notesHome, 'warden.db'));
    try {
      expect(await store.getAppliedPolicy('notes-agent')).toBeNull();
    } finally {
      await store.close();
    }
    const trail = json<{ events: { type: string }[] }>(await cli(['audit', runId, '--json'], notesEnv)).events;
    expect(trail.some((e) => e.type === 'policy_applied')).toBe(false);
  });

  test('policy apply of a valid file stores it and sends it to the running runs', async () => {
    const good = path.join(tmp, 'notes-good.yaml');
    writeFileSync(good, readFileSync(path.join(fixture, 'policies', 'notes-agent.yaml'), 'utf8').replace('timeout: 1h', 'timeout: 2h'));
    const r = await cli(['policy', 'apply', good, '--by', 'ops'], { ...notesEnv, WARDEN_SIGNING_KEY: opsKeyFile });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/applied pv_\w+ to notes-agent: new runs start with it; sent to [1-9]\d* running run\(s\)/);
    const store = createSqliteStore(path.join(notesHome, 'warden.db'));
    try {
      expect(await store.getAppliedPolicy('notes-agent')).toMatchObject({ source: good });
    } finally {
      await store.close();
    }
    await eventually(async () => {
      const trail = json<{ events: { type: string; data: Record<string, unknown> }[] }>(await cli(['audit', runId, '--json'], notesEnv)).events;
      return trail.find((e) => e.type === 'policy_applied' && e.data.by === 'ops' && e.data.refused === undefined);
    }, 10_000, 'policy_applied');
  });

  test('cancel ends the run as cancelled', async () => {
    const r = await cli(['cancel', runId], notesEnv);
    expect(r.code).toBe(0);
    const outcome = await eventually(async () => (await statusOf(runId, notesEnv)).outcome, 10_000, 'cancelled outcome');
    expect(outcome.status).toBe('cancelled');
    const again = await cli(['cancel', runId], notesEnv);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('has already finished');
  });
});

describe('warden audit --verify', () => {
  test('passes on a stored trail and fails, naming the seq, when a stored row was altered', async () => {
    const script = path.join(root, 'examples', 'scripts', 'refund-out-of-scope.json');
    const { runId } = json<{ runId: string }>(await cli(['run', 'refund-agent', '--goal', 'audit me', '--script', script, '--requester', 'dana', '--wait', '--json'], refundEnv));

    const printed = await cli(['audit', runId], refundEnv);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^\s*1\s+\S+\s+run_started\s+agent=refund-agent/m);
    expect(printed.stdout).toMatch(/policy_decision\s+.*decision=deny/);

    const ok = await cli(['audit', runId, '--verify'], refundEnv);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/chain verified: \d+ events, head [0-9a-f]{12} \(matches the head Temporal anchored\)/);

    // Someone with write access to the store turns the denial into an allow.
    const db = new Database(path.join(refundHome, 'warden.db'));
    let seq: number;
    try {
      const row = db.prepare<[string], { seq: number; data: string }>("SELECT seq, data FROM audit_events WHERE run_id = ? AND type = 'policy_decision' AND data LIKE '%\"deny\"%'").get(runId);
      if (!row) throw new Error('no denial stored');
      seq = row.seq;
      db.prepare('UPDATE audit_events SET data = ? WHERE run_id = ? AND seq = ?').run(row.data.replace('"deny"', '"allow"'), runId, seq);
    } finally {
      db.close();
    }
    const broken = await cli(['audit', runId, '--verify'], refundEnv);
    expect(broken.code).toBe(1);
    expect(broken.stderr.trim()).toBe(`error: audit chain of ${runId} is BROKEN at seq ${seq}: hash does not match the event content (altered)`);
  });
});

describe('warden demo', () => {
  test('demo --exit --headless runs the whole walkthrough on its own dev server', async () => {
    const home = path.join(tmp, 'demo-home');
    const r = await cli(['demo', '--exit', '--headless'], { WARDEN_HOME: home, WARDEN_TASK_QUEUE: `demo-${unique}` }, 170_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const o = r.stdout;
    expect(o).toMatch(/DENY\s+change_credit_limit/);
    expect(o).toContain("CUST-001's credit limit is $2,000.00");
    expect(o).toContain('outcome: budget_exhausted (loop detected');
    expect(o).toContain('outcome: budget_exhausted (cost budget exhausted');
    expect(o).toContain('refused: four-eyes');
    expect(o).toContain('accepted from alice: the call is now approved');
    expect(o).toMatch(/DECIDED\s+approve by alice \(groups finance, channel cli, signed\)/);
    expect(o).toContain('status: phase paused, paused true');
    expect(o).toMatch(/outcome: rolled_back/);
    expect(o).toMatch(/RF-\d+ \$40\.00 reversed/);
    // The hand-off: the refund agent's run, under its own policy, inside the triage run's budgets.
    expect(o).toMatch(/DELEGATE refund-agent → run warden\/refund-agent\/demo-[\w-]+-handoff\.d4/);
    expect(o).toMatch(/└─ refund-agent warden\/refund-agent\/demo-[\w-]+-handoff\.d4 {2}completed: the agent finished/);
    expect(o).toMatch(/ALLOW\s+issue_refund \{"amount":30,"orderId":"ORD-1002"/);
    expect(o).toMatch(/ORD-1002 refunds: RF-\d+ \$30\.00 issued/);
    // Eight runs, the delegate's among them; the triage run's check covers its delegate's trail too.
    expect((o.match(/chain verified: \d+ events/g) ?? []).length).toBe(8);
    expect(o).toContain('1 delegate run(s) verified against the heads recorded here');
    expect(existsSync(path.join(home, 'temporal.db'))).toBe(true);

    // The web inbox runs beside the worker, with development users made on this first run.
    const passwords = path.join(home, 'dev-passwords.txt');
    expect(o).toMatch(/inbox\s+http:\/\/127\.0\.0\.1:\d+ \(log in as alice, password in /);
    expect(o).toContain(`(log in as alice, password in ${passwords})`);
    const alice = /^alice\t(\S+)$/m.exec(readFileSync(passwords, 'utf8'))?.[1] ?? '';
    expect(alice).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(o.split(alice)).toHaveLength(2);
    expect(statSync(passwords).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(home, 'users.yaml'), 'utf8')).toMatch(/id: bob[\s\S]*finance-leads/);
    // With --exit there is no scene for the reader.
    expect(o).not.toContain('Your turn');
  }, 180_000);
});

describe("warden dev with a project's own agents", () => {
  test('suggests a run of the agents it loaded, and serves the inbox on another port when 8787 is taken', async () => {
    // 8787 held here, unless something holds it already: the same case.
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.once('error', () => resolve()).listen(8787, '127.0.0.1', resolve));
    const [port] = await freePorts(1);
    const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: path.join(tmp, 'dev-home'), WARDEN_TASK_QUEUE: `dev-${unique}`, NOTES_DIR: notesDir };
    delete env.TEMPORAL_ADDRESS;
    const dev = spawn(process.execPath, [bin, 'dev', '--headless', '--port', String(port), '--agents', path.join(fixture, 'index.ts'), '--policies', path.join(fixture, 'policies')], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    dev.stdout.on('data', (c: Buffer) => (output += c.toString()));
    dev.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise((resolve) => dev.once('exit', resolve));
    try {
      await eventually(async () => output.includes('Ctrl-C stops the inbox') || dev.exitCode !== null, 120_000, 'warden dev to come up');
      expect(output).toContain('Warden dev environment is up');
      expect(output).toContain('warden run notes-agent --goal "<what notes-agent should do>" --script <turns.json> --wait');
      expect(output).toContain('[{"toolCalls":[{"name":"write_note","args":{…}}]},{"text":"Done."}]');
      expect(output).not.toContain('refund-agent');
      const inbox = /inbox\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      expect(inbox).toBeDefined();
      expect(inbox).not.toBe('8787');
    } finally {
      dev.kill('SIGINT');
      await exited;
      blocker.close();
    }
  }, 180_000);
});
