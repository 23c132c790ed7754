/**
 * `warden inbox` and `warden slack` as people run them: `node bin/warden.js …` in a child process
 * against the suite's dev server. The runs are served by a worker in this process that trusts the
 * web key the test makes with `warden keys generate`; the inbox child signs with that key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashPassword, loadUsersFile, verifyPassword } from '../src/approvals';
import { devUserDirectory, ensureDevUsers } from '../src/cli/dev-users';
import { parseKeyring } from '../src/governance';
import { startFakeSlack } from './fixtures/approvals/fake-slack';
import { effects } from './fixtures/test-agents';
import { runCli, type CliResult } from './fixtures/run-cli';
import { createTestBed, financeApprovalPolicy, eventually, settings, type TestBed } from './helpers';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'warden.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-cli-inbox-'));
const home = path.join(tmp, 'home');
const usersFile = path.join(tmp, 'users.yaml');
const webKeyFile = path.join(tmp, 'keys', 'web.json');

/** The environment of every child: the suite's server, a home of its own, no Slack settings from the machine. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: settings().address, WARDEN_HOME: home, WARDEN_LOG_LEVEL: 'warn', ...extra };
  for (const name of ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'SLACK_API_URL']) if (!(name in extra)) delete env[name];
  return env;
}

type Result = CliResult;

/** Runs a command that ends on its own. */
function cli(args: string[], env: NodeJS.ProcessEnv = childEnv(), timeoutMs = 60_000): Promise<Result> {
  return runCli(args, env, timeoutMs);
}

interface Server {
  child: ChildProcess;
  /** The first match of `ready` in its stdout. */
  match: RegExpExecArray;
  output(): string;
  /** Ctrl-C: resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts a command that keeps serving, and waits until its stdout matches `ready` (which should reach its last line: output comes in chunks). */
function serve(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<Server> {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`warden ${args.join(' ')} did not start\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 60_000);
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
      const match = ready.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        child,
        match,
        output: () => stdout,
        stop: () => {
          if (child.exitCode === null) child.kill('SIGINT');
          return exited;
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`warden ${args.join(' ')} exited with ${code}\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });
}

const policy = financeApprovalPolicy();

let bed: TestBed;
let inbox: Server;
let base = '';

beforeAll(async () => {
  // The inbox signs people in itself, so its key may assert anyone: the grant `keys generate` prints is what the worker trusts.
  const key = await cli(['keys', 'generate', '--id', 'test-web', '--out', webKeyFile, '--channel', 'web', '--any-identity']);
  expect(key.code).toBe(0);
  const publicKey = /public key: ([0-9a-f]{64})/.exec(key.stdout)?.[1] ?? '';
  expect(publicKey).toMatch(/^[0-9a-f]{64}$/);
  const grant = /^ {2}(\{.*\})$/m.exec(key.stdout)?.[1] ?? '';
  const keyring = parseKeyring(JSON.parse(grant), 'the grant warden keys generate printed');
  expect(keyring).toEqual({ 'test-web': { publicKey, channel: 'web', people: '*', revoked: false } });
  const users = [
    { id: 'alice', name: 'Alice Adams', password: await hashPassword('alice-secret-1'), groups: ['finance'] },
    { id: 'carol', password: await hashPassword('carol-secret-1'), groups: ['support'] },
  ];
  writeFileSync(usersFile, JSON.stringify({ users }));
  bed = await createTestBed({ keyring });
  inbox = await serve(['inbox', '--users', usersFile, '--port', '0', '--key', webKeyFile], childEnv(), /web inbox: (http:\/\/127\.0\.0\.1:\d+)[\s\S]*Ctrl-C stops it/);
  base = inbox.match[1] ?? '';
}, 120_000);

afterAll(async () => {
  // Ctrl-C closes the inbox and exits cleanly.
  const code = await inbox?.stop();
  await bed?.close();
  rmSync(tmp, { recursive: true, force: true });
  expect(code).toBe(0);
});
beforeEach(() => effects.reset());

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Signs in through the login form and returns the session cookie. */
async function signIn(username: string, password: string): Promise<string> {
  const res = await fetch(`${base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: form({ username, password, next: '/' }) });
  expect(res.status).toBe(303);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  expect(cookie).toMatch(/^warden_session=.+/);
  return cookie;
}

/** The decision form of a run page: its CSRF token and approval id. */
async function decisionForm(cookie: string, runId: string): Promise<{ csrf: string; approvalId: string }> {
  const res = await fetch(`${base}/runs/${encodeURIComponent(runId)}`, { headers: { cookie } });
  expect(res.status).toBe(200);
  const page = await res.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
  const approvalId = /name="approvalId" value="([^"]+)"/.exec(page)?.[1];
  if (!csrf || !approvalId) throw new Error(`no decision form on the run page:\n${page}`);
  return { csrf, approvalId };
}

function decide(cookie: string, fields: Record<string, string>) {
  return fetch(`${base}/decide`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: form(fields) });
}

const heading = (page: string) => /<h1>([^<]*)<\/h1>/.exec(page)?.[1];

describe('warden inbox', () => {
  test('alice signs in, approves a waiting call with the form and its CSRF token, and the run completes', async () => {
    expect(inbox.output()).toMatch(/sign-in\s+2 user\(s\) of .*users\.yaml/);
    expect(inbox.output()).toContain('signing     key test-web');

    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay the supplier', requester: 'dana', policy, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 250, to: 'acct-9' } }] }, { text: 'paid' }] });
    const pending = await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');

    const wrong = await fetch(`${base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: form({ username: 'alice', password: 'nope', next: '/' }) });
    expect(wrong.status).toBe(401);

    const cookie = await signIn('alice', 'alice-secret-1');
    const { csrf, approvalId } = await decisionForm(cookie, runId);
    expect(approvalId).toBe(pending.approvalId);

    // Without the session's token the form does nothing.
    const forged = await decide(cookie, { runId, approvalId, decision: 'approve', csrf: 'not-the-token' });
    expect(forged.status).toBe(403);
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);

    const res = await decide(cookie, { runId, approvalId, decision: 'approve', note: 'invoice checked', csrf });
    const page = await res.text();
    expect(res.status).toBe(200);
    expect(heading(page)).toBe('Approved');
    expect(page).toContain('The call runs now.');

    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed', toolCalls: 1, text: 'paid' });
    expect(effects.count('transfer')).toBe(1);
    const accepted = (await bed.store.readAudit(runId)).find((e) => e.type === 'approval_accepted');
    expect(accepted?.data).toMatchObject({ approvalId, approver: 'alice', groups: ['finance'], channel: 'web', signed: true, note: 'invoice checked' });
  });

  test("carol, not an approver, is refused by the run; the call still waits", async () => {
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'pay again', requester: 'dana', policy, script: [{ toolCalls: [{ name: 'transfer', args: { amount: 90, to: 'acct-2' } }] }, { text: 'done' }] });
    await eventually(async () => (await bed.client.pendingApprovals(runId))[0], 20_000, 'a pending approval');
    const cookie = await signIn('carol', 'carol-secret-1');
    const { csrf, approvalId } = await decisionForm(cookie, runId);
    const page = await (await decide(cookie, { runId, approvalId, decision: 'approve', csrf })).text();
    expect(heading(page)).toBe('Refused');
    expect(page).toContain('carol is not among the approvers (group:finance)');
    expect(await bed.client.pendingApprovals(runId)).toHaveLength(1);
    await bed.client.cancel(runId);
    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'cancelled' });
    expect(effects.count('transfer')).toBe(0);
  });

  test('sign-in flags that contradict each other are a usage error (exit 2)', async () => {
    const r = await cli(['inbox', '--users', usersFile, '--oidc-issuer', 'https://id.example.com']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('error: --users and --oidc-* are two ways to sign people in: give one');
  });
});

describe('warden slack', () => {
  test('without its environment: exit 1, one line naming the missing variables', async () => {
    const none = await cli(['slack']);
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/^error: SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN are not set/);

    const half = await cli(['slack'], childEnv({ SLACK_BOT_TOKEN: 'xoxb-test' }));
    expect(half.code).toBe(1);
    expect(half.stderr).toMatch(/^error: SLACK_SIGNING_SECRET is not set/);
    expect(half.stderr).not.toContain('SLACK_BOT_TOKEN is');

    const socket = await cli(['slack', '--socket-mode'], childEnv({ SLACK_BOT_TOKEN: 'xoxb-test' }));
    expect(socket.code).toBe(1);
    expect(socket.stderr).toMatch(/^error: SLACK_APP_TOKEN is not set/);
  });

  test('with its environment it starts against Slack (a local stand-in) and says where Slack must send clicks', async () => {
    const fake = await startFakeSlack();
    const slackKey = path.join(tmp, 'keys', 'slack.json');
    try {
      expect((await cli(['keys', 'generate', '--id', 'test-slack', '--out', slackKey, '--channel', 'slack', '--any-identity'])).code).toBe(0);
      const env = childEnv({ SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: 'test-secret', SLACK_API_URL: fake.url });
      const missing = await cli(['slack', '--port', '0', '--key', slackKey], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`no Slack identities file ${path.join(home, 'slack-identities.json')}`);

      const identities = path.join(__dirname, 'fixtures/approvals/slack-identities.json');
      const app = await serve(['slack', '--port', '0', '--identities', identities, '--key', slackKey], env, /Request URL (http:\/\/127\.0\.0\.1:\d+\/slack\/events)[\s\S]*Ctrl-C stops it/);
      expect(app.output()).toContain(`2 Slack user(s) mapped in ${identities}`);
      expect(fake.calls.some((c) => c.method === 'auth.test' && c.token === 'xoxb-test')).toBe(true);
      // Unsigned requests are refused: the app checks Slack's signature.
      const res = await fetch(app.match[1] ?? '', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payload=%7B%7D' });
      expect(res.status).toBe(401);
      expect(await app.stop()).toBe(0);
    } finally {
      await fake.close();
    }
  });
});

describe('development users', () => {
  test('made once with random passwords: hashes in users.yaml, passwords in dev-passwords.txt (0600)', async () => {
    const devHome = path.join(tmp, 'dev-home');
    const first = await ensureDevUsers(devHome);
    expect(first.created?.map((u) => `${u.id}:${u.groups.join(',')}`)).toEqual(['alice:finance', 'bob:finance-leads,operators,policy-admins', 'carol:support']);
    // The development CLI key speaks for the same people, in the same groups.
    expect(devUserDirectory()).toEqual(Object.fromEntries((first.created ?? []).map((u) => [u.id, u.groups])));
    const users = loadUsersFile(first.usersFile);
    const text = readFileSync(first.passwordsFile ?? '', 'utf8');
    for (const u of first.created ?? []) {
      expect(u.password).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(text).toContain(`${u.id}\t${u.password}`);
      const hash = users.find((x) => x.id === u.id)?.password ?? '';
      await expect(verifyPassword(u.password, hash)).resolves.toBe(true);
    }
    expect(readFileSync(first.usersFile, 'utf8')).not.toContain(first.created?.[0]?.password ?? '');
    expect(statSync(first.passwordsFile ?? '').mode & 0o777).toBe(0o600);

    const again = await ensureDevUsers(devHome);
    expect(again.created).toBeNull();
    expect(again.passwordsFile).toBe(first.passwordsFile);
    expect(readFileSync(again.passwordsFile ?? '', 'utf8')).toBe(text);
  });
});
