/**
 * `warden inbox`'s console flags as people pass them: who operates, who applies policies, where the
 * Temporal UI is; a name that is no user or group, and a UI address that is no URL, are usage errors.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashPassword } from '../src/approvals';
import { createSigningKey } from '../src/approvals/signing-keys';
import { runCli } from './fixtures/run-cli';
import { settings } from './helpers';

const root = path.join(__dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-console-cli-'));
const env = (): NodeJS.ProcessEnv => ({ ...process.env, TEMPORAL_ADDRESS: settings().address, WARDEN_HOME: path.join(tmp, 'home'), WARDEN_LOG_LEVEL: 'warn' });

beforeAll(async () => {
  createSigningKey(path.join(tmp, 'web.json'), 'cli-console-web');
  const users = { users: [{ id: 'alice', groups: ['finance'], password: await hashPassword('alice-pw-123') }, { id: 'bob', groups: ['finance'], password: await hashPassword('bob-pw-123') }] };
  writeFileSync(path.join(tmp, 'users.yaml'), JSON.stringify(users));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test('--operators and --policy-admins name who gets the controls (with --temporal-ui), and the start-up lines say so', async () => {
  const args = ['inbox', '--users', path.join(tmp, 'users.yaml'), '--port', '0', '--key', path.join(tmp, 'web.json'), '--operators', 'user:alice', '--policy-admins', 'user:bob', '--temporal-ui', 'http://127.0.0.1:8233'];
  const child = spawn(process.execPath, [path.join(root, 'bin', 'warden.js'), ...args], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`warden inbox did not start: ${stdout}`)), 60_000);
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        const m = /web inbox: (http:\/\/127\.0\.0\.1:\d+)[\s\S]*Ctrl-C stops it/.exec(stdout);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    expect(stdout).toContain(`console     ${base}/console: operators user:alice; policy admins user:bob`);
    const signIn = async (user: string) => {
      const res = await fetch(`${base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: new URLSearchParams({ username: user, password: `${user}-pw-123`, next: '/' }).toString() });
      return (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    };
    const page = async (user: string, url: string) => (await fetch(`${base}${url}`, { headers: { cookie: await signIn(user) } })).text();
    expect(await page('alice', '/console/agents')).toContain('Engage kill switch');
    expect(await page('bob', '/console/agents')).toContain('need the operator role (user:alice)');
    expect(await page('bob', '/console/policies')).toContain('name="policy"');
    expect(await page('alice', '/console/policies')).toContain('needs the policy-admin role (user:bob)');
  } finally {
    child.kill('SIGINT');
    await exited;
  }
});

test('a name that is no user or group, or a Temporal UI that is no URL, is a usage error (exit 2)', async () => {
  const base = ['inbox', '--users', path.join(tmp, 'users.yaml'), '--port', '0', '--key', path.join(tmp, 'web.json')];
  const bad = await runCli([...base, '--operators', 'operators'], env(), 60_000);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('"operators" names nobody: use group:<name> or user:<id>');
  const ui = await runCli([...base, '--temporal-ui', 'not a url'], env(), 60_000);
  expect(ui.code).toBe(2);
  expect(ui.stderr).toContain('--temporal-ui not a url is not a URL');
});
