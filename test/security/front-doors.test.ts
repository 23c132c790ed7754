/**
 * Warden's front doors, attacked the way a stranger on the network would: the Slack endpoint and
 * the web inbox over real HTTP(S) on 127.0.0.1, and the CLI's human output fed terminal escapes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadUsersFile, localUsersAuthenticator } from '../../src/approvals/auth/local-users';
import { LoginLimiter } from '../../src/approvals/inbox/login-limiter';
import { InboxConfigError, createInboxServer, type InboxServer, type InboxServerOptions } from '../../src/approvals/inbox/server';
import { DecisionSigner } from '../../src/approvals/signing-keys';
import { isLoopbackHost } from '../../src/approvals/listen';
import { createSlackApp, type SlackApp } from '../../src/approvals/slack/app';
import { loadSlackIdentities } from '../../src/approvals/slack/identities';
import { WardenClient } from '../../src/client';
import { approvalsTable, auditLines, outJson, outcomeLines, printable } from '../../src/cli/format';
import { generateSigningKey, type AuditEvent } from '../../src/governance';
import type { PendingApproval, RunOutcome } from '../../src/workflows/run-types';
import { slackSignature, startFakeSlack } from '../fixtures/approvals/fake-slack';
import { runCli } from '../fixtures/run-cli';
import { settings, testPayloadCodec } from '../helpers';

const USERS_FILE = path.join(__dirname, '..', 'fixtures', 'approvals', 'users.yaml');
const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';
const webKey = { keyId: 'test-web', ...generateSigningKey() };
const silent = pino({ level: 'silent' });
/** Any raw C0/C1 control character or DEL: what must never reach a terminal from run data. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

let client: WardenClient;
beforeAll(async () => {
  // A real client of the suite's dev server: the front doors under test never reach a run. With the
  // suite's payload key, as every Warden client has: other suites' runs are listed too.
  client = await WardenClient.connect(settings(), undefined, { payloadCodec: testPayloadCodec() });
});
afterAll(async () => {
  await client?.close();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request with node:http(s), headers exactly as sent and received (fetch would normalise them). */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer; from?: string } = {}): Promise<Answer> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // `from`: another loopback address (127.0.0.0/8) as the client's, so a test can be two people on two machines.
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, ...(options.ca ? { ca: options.ca } : {}), ...(options.from ? { localAddress: options.from } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function inboxOptions(extra: Partial<InboxServerOptions> = {}): InboxServerOptions {
  return { client, signer: new DecisionSigner(webKey), auth: localUsersAuthenticator(loadUsersFile(USERS_FILE)), logger: silent, ...extra };
}

function login(url: string, username: string, password: string, next = '/', extra: { headers?: Record<string, string>; ca?: Buffer; from?: string } = {}): Promise<Answer> {
  return send(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...extra.headers },
    body: new URLSearchParams({ username, password, next }).toString(),
    ca: extra.ca,
    ...(extra.from ? { from: extra.from } : {}),
  });
}

/** The `warden_device` cookie an answer sets (name=value), to send back as a browser would. */
function deviceCookie(answer: Answer): string {
  const set = (answer.headers['set-cookie'] ?? []).find((c) => c.startsWith('warden_device='));
  if (!set) throw new Error(`no device cookie in ${JSON.stringify(answer.headers['set-cookie'])}`);
  return set.split(';')[0] ?? '';
}

const rightPassword = (user: string) => `${user}-pw-123`;

describe('Slack endpoint: the body limit counts bytes read', () => {
  let fake: Awaited<ReturnType<typeof startFakeSlack>>;
  let slack: SlackApp;
  beforeAll(async () => {
    fake = await startFakeSlack();
    slack = await createSlackApp({
      signingSecret: SIGNING_SECRET,
      botToken: 'xoxb-test-token',
      client,
      signer: new DecisionSigner(webKey),
      identities: loadSlackIdentities(path.join(__dirname, '..', 'fixtures', 'approvals', 'slack-identities.json')),
      slackApiUrl: fake.url,
      logger: silent,
    });
  });
  afterAll(async () => {
    await slack?.close();
    await fake?.close();
  });

  /**
   * Streams a chunked body (no Content-Length) of up to `total` bytes, as fast as the server reads
   * it, and stops writing as soon as an answer arrives. Resolves with the status and the bytes sent.
   */
  function streamChunked(url: string, total: number): Promise<{ status: number; sent: number }> {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const chunk = Buffer.alloc(64 * 1024, 'a');
    return new Promise((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const req = httpRequest(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked', 'x-slack-request-timestamp': timestamp, 'x-slack-signature': `v0=${'0'.repeat(64)}` },
      });
      req.on('response', (res) => {
        answered = true;
        res.resume();
        resolve({ status: res.statusCode ?? 0, sent });
        req.destroy();
      });
      // Once answered, the server closes a connection whose body it will not read: writes then fail.
      req.on('error', (err) => {
        if (!answered) reject(err);
      });
      const pump = () => {
        while (!answered && sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        if (!answered) req.end();
      };
      pump();
    });
  }

  test('a chunked body over 1 MiB is answered 413 before it has all been sent', async () => {
    const total = 64 * 1024 * 1024;
    const { status, sent } = await streamChunked(slack.url ?? '', total);
    expect(status).toBe(413);
    // The server stopped reading: the answer came while most of the body was still unsent.
    expect(sent).toBeLessThan(total / 2);
  });

  test('a small signed request still reaches Bolt, which verifies the signature over the bytes read here', async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ type: 'url_verification', challenge: 'front-door-challenge' });
    const headers = { 'content-type': 'application/json', 'x-slack-request-timestamp': String(timestamp) };
    const signed = await send(slack.url ?? '', { method: 'POST', headers: { ...headers, 'x-slack-signature': slackSignature(SIGNING_SECRET, timestamp, body) }, body });
    expect(signed.status).toBe(200);
    expect(signed.body).toContain('front-door-challenge');
    const forged = await send(slack.url ?? '', { method: 'POST', headers: { ...headers, 'x-slack-signature': slackSignature('another-secret', timestamp, body) }, body });
    expect(forged.status).toBe(401);
  });
});

describe('inbox login: failed logins are limited', () => {
  test('five wrong passwords for alice from one address lock alice there: 429, Retry-After, a page saying when; even the right password waits there', async () => {
    const inbox = await createInboxServer(inboxOptions());
    try {
      for (let i = 0; i < 5; i += 1) expect((await login(inbox.url, 'alice', `guess-${i}`)).status).toBe(401);
      const locked = await login(inbox.url, 'alice', rightPassword('alice'));
      expect(locked.status).toBe(429);
      expect(locked.headers['set-cookie']).toBeUndefined();
      const retryAfter = Number(locked.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(14 * 60);
      expect(retryAfter).toBeLessThanOrEqual(15 * 60);
      expect(locked.body).toContain('Too many failed sign-ins for this user from your address. Try again in 15 minutes (after ');
      // The lock is on alice from there, not on everyone: bob (same address, few failures) signs in.
      expect((await login(inbox.url, 'bob', rightPassword('bob'))).status).toBe(303);
      // Case and spacing do not make a fresh count, and neither does a look-alike spelling.
      expect((await login(inbox.url, ' ALICE ', rightPassword('alice'))).status).toBe(429);
      expect((await login(inbox.url, '\u0430lice', 'guess-x')).status).toBe(429);
    } finally {
      await inbox.close();
    }
  });

  test("someone else's failed guesses do not lock alice out: the right password from her own address signs her in", async () => {
    const inbox = await createInboxServer(inboxOptions());
    try {
      for (let i = 0; i < 5; i += 1) expect((await login(inbox.url, 'alice', `guess-${i}`, '/', { from: '127.0.0.2' })).status).toBe(401);
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.2' })).status).toBe(429);
      const alice = await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.3' });
      expect(alice.status).toBe(303);
      expect(alice.headers['set-cookie']?.some((c) => c.startsWith('warden_session='))).toBe(true);
      // The guesser is still held where it is.
      expect((await login(inbox.url, 'alice', 'guess-5', '/', { from: '127.0.0.2' })).status).toBe(429);
    } finally {
      await inbox.close();
    }
  });

  test('a browser alice signed in with before gets her in even behind the locked address; a fresh one there waits', async () => {
    const inbox = await createInboxServer(inboxOptions());
    try {
      const earlier = await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.4' });
      expect(earlier.status).toBe(303);
      const device = deviceCookie(earlier);
      // Attributes in any order: they are a set (RFC 6265), and the cookie helper writes Max-Age first.
      const deviceAttributes = (earlier.headers['set-cookie']?.find((c) => c.startsWith('warden_device=')) ?? '').split(';').slice(1).map((a) => a.trim());
      expect(deviceAttributes).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', 'Path=/login', expect.stringMatching(/^Max-Age=\d+$/)]));
      // Someone behind the same address (one office, one NAT) guesses.
      for (let i = 0; i < 5; i += 1) expect((await login(inbox.url, 'alice', `guess-${i}`, '/', { from: '127.0.0.4' })).status).toBe(401);
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.4' })).status).toBe(429);
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.4', headers: { cookie: device } })).status).toBe(303);
      // Alice's success in her browser does not reopen the address for the others there, and an altered token counts for nothing.
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.4' })).status).toBe(429);
      const forged = device.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.4', headers: { cookie: forged } })).status).toBe(429);
    } finally {
      await inbox.close();
    }
  });

  test('guessing stays limited: many addresses together lock the account for fresh browsers, not for the browser alice uses', async () => {
    const inbox = await createInboxServer(inboxOptions({ loginLimits: { perUserAndAddress: 5, perUser: 10 } }));
    try {
      const usual = await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.5' });
      const device = deviceCookie(usual);
      for (const from of ['127.0.0.6', '127.0.0.7']) for (let i = 0; i < 5; i += 1) expect((await login(inbox.url, 'alice', `guess-${from}-${i}`, '/', { from })).status).toBe(401);
      const fresh = await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.8' });
      expect(fresh.status).toBe(429);
      expect(fresh.body).toContain('Too many failed sign-ins for this user from new browsers.');
      // A guess from a new address is refused before any password check, so the count stops there.
      expect((await login(inbox.url, 'alice', 'guess-new', '/', { from: '127.0.0.9' })).status).toBe(429);
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.8', headers: { cookie: device } })).status).toBe(303);
      // Wrong passwords in alice's own browser are limited too.
      for (let i = 0; i < 5; i += 1) expect((await login(inbox.url, 'alice', `oops-${i}`, '/', { from: '127.0.0.5', headers: { cookie: device } })).status).toBe(401);
      expect((await login(inbox.url, 'alice', rightPassword('alice'), '/', { from: '127.0.0.5', headers: { cookie: device } })).status).toBe(429);
    } finally {
      await inbox.close();
    }
  });

  test("a successful login resets that username's count", async () => {
    const inbox = await createInboxServer(inboxOptions());
    try {
      for (let i = 0; i < 4; i += 1) expect((await login(inbox.url, 'bob', `guess-${i}`)).status).toBe(401);
      expect((await login(inbox.url, 'bob', rightPassword('bob'))).status).toBe(303);
      for (let i = 0; i < 4; i += 1) expect((await login(inbox.url, 'bob', `again-${i}`)).status).toBe(401);
      expect((await login(inbox.url, 'bob', rightPassword('bob'))).status).toBe(303);
    } finally {
      await inbox.close();
    }
  });

  test('twenty failures from one address, each for another username, lock that address out', async () => {
    const inbox = await createInboxServer(inboxOptions());
    try {
      for (let i = 0; i < 20; i += 1) expect((await login(inbox.url, `sprayed-${i}`, 'Winter2025!')).status).toBe(401);
      const locked = await login(inbox.url, 'carol', rightPassword('carol'));
      expect(locked.status).toBe(429);
      expect(locked.body).toContain('Too many failed sign-ins from your address.');
    } finally {
      await inbox.close();
    }
  });

  test('the limiter forgets failures after the window, keys usernames as identities and IPv6 per /64, and stays bounded', () => {
    let now = 1_000_000;
    const limiter = new LoginLimiter({ perUserAndAddress: 2, perUser: 3, perAddress: 3, windowMs: 60_000, maxTracked: 8 }, () => now);
    limiter.recordFailure('alice', '10.0.0.1', null);
    now += 10_000;
    limiter.recordFailure('Alice', '10.0.0.1', null);
    expect(limiter.check('alice', '10.0.0.1', null)).toEqual({ allowed: false, retryAt: 1_000_000 + 60_000, scope: 'user-address' });
    // From another address alice may still try: two failures are under the account's three.
    expect(limiter.check('alice', '10.0.0.2', null)).toEqual({ allowed: true });
    limiter.recordFailure('alice', '10.0.0.3', null);
    expect(limiter.check('alice', '10.0.0.2', null)).toEqual({ allowed: false, retryAt: 1_000_000 + 60_000, scope: 'user' });
    // A browser alice signed in with before is judged by its own failures only.
    const device = limiter.deviceOf(limiter.issueDevice('alice'), ' ALICE');
    expect(device).not.toBeNull();
    expect(limiter.check('alice', '10.0.0.1', device)).toEqual({ allowed: true });
    expect(limiter.deviceOf(limiter.issueDevice('alice'), 'bob')).toBeNull();
    expect(limiter.deviceOf('forged.token', 'alice')).toBeNull();
    now = 1_000_000 + 60_000;
    // The first failure has expired; the others remain, under both limits.
    expect(limiter.check('alice', '10.0.0.1', null)).toEqual({ allowed: true });
    expect(limiter.check('alice', '10.0.0.2', null)).toEqual({ allowed: true });

    limiter.recordFailure('u1', '2001:db8:1:2::1', null);
    limiter.recordFailure('u2', '2001:db8:1:2:ffff::9', null);
    limiter.recordFailure('u3', '2001:0db8:0001:0002:0:0:0:5', null);
    expect(limiter.check('someone', '2001:db8:1:2::77', null)).toMatchObject({ allowed: false, scope: 'address' });
    expect(limiter.check('someone', '2001:db8:1:3::77', null)).toEqual({ allowed: true });

    for (let i = 0; i < 50; i += 1) limiter.recordFailure(`flood-${i}`, `192.0.2.${i}`, null);
    expect(limiter.size).toBeLessThanOrEqual(8);
  });

  test('a refused login logs no username, only the client and a count', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const inbox = await createInboxServer(inboxOptions({ logger }));
    try {
      // People type passwords into the username field: that text must not reach the log.
      const typedByMistake = 'correct-horse-battery-staple';
      expect((await login(inbox.url, typedByMistake, 'whatever')).status).toBe(401);
      const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'login refused');
      expect(refused).toMatchObject({ client: expect.stringContaining('127.0.0.1'), failuresForUser: 1 });
      expect(refused).not.toHaveProperty('username');
      expect(lines.join('\n')).not.toContain(typedByMistake);
    } finally {
      await inbox.close();
    }
  });
});

describe('inbox login: next never leaves the inbox', () => {
  let inbox: InboxServer;
  let cookie: string;
  beforeAll(async () => {
    inbox = await createInboxServer(inboxOptions());
    const signedIn = await login(inbox.url, 'alice', rightPassword('alice'));
    expect(signedIn.status).toBe(303);
    cookie = (signedIn.headers['set-cookie']?.[0] ?? '').split(';')[0] ?? '';
  });
  afterAll(async () => {
    await inbox?.close();
  });

  /** Where a browser goes from the inbox's Location header (WHATWG URL parsing, as browsers do). */
  const followed = (answer: Answer) => new URL(String(answer.headers.location), inbox.url);

  // Each is the `next` query string exactly as it appears in the address bar.
  const offSite = [
    ['tab', encodeURIComponent('/\t/evil.example')],
    ['newline', encodeURIComponent('/\n/evil.example')],
    ['carriage return and newline', encodeURIComponent('/\r\n/evil.example')],
    ['backslash', encodeURIComponent('/\\evil.example')],
    ['two backslashes', encodeURIComponent('\\\\evil.example')],
    ['tab then backslash', encodeURIComponent('/\t\\evil.example')],
    ['protocol-relative', encodeURIComponent('//evil.example')],
    ['dot segment to protocol-relative', encodeURIComponent('/.//evil.example')],
    ['absolute URL', encodeURIComponent('https://evil.example/')],
    ['javascript: URL', encodeURIComponent('javascript:alert(1)')],
    ['leading space', encodeURIComponent(' //evil.example')],
    ['NUL', encodeURIComponent('/\u0000/evil.example')],
    ['encoded tab, as typed', '/%09/evil.example'],
    ['encoded newline and slashes, as typed', '%2F%0A%2Fevil.example'],
    ['encoded backslash, as typed', '/%5Cevil.example'],
    ['encoded backslashes, as typed', '%5C%5Cevil.example'],
  ];

  test.each(offSite)('GET /login?next= with a %s stays on the inbox', async (_name, query) => {
    const answer = await send(`${inbox.url}/login?next=${query}`, { headers: { cookie } });
    expect(answer.status).toBe(303);
    expect(followed(answer).origin).toBe(new URL(inbox.url).origin);
    expect(String(answer.headers.location)).not.toMatch(RAW_CONTROL);
  });

  test('POST /login with next=/<tab>/evil.example and with next=/\\evil.example stays on the inbox', async () => {
    for (const next of ['/\t/evil.example', '/\\evil.example']) {
      const answer = await login(inbox.url, 'bob', rightPassword('bob'), next);
      expect(answer.status).toBe(303);
      expect(followed(answer).origin).toBe(new URL(inbox.url).origin);
    }
  });

  test('local paths are kept as they were asked for, percent-escapes included', async () => {
    for (const next of ['/runs/warden%2Frefund-agent%2F1234?tab=audit#trail', '/history?outcome=approved', '/%2509/evil.example']) {
      const answer = await send(`${inbox.url}/login?next=${encodeURIComponent(next)}`, { headers: { cookie } });
      expect(answer.headers.location).toBe(next);
      expect(followed(answer).origin).toBe(new URL(inbox.url).origin);
    }
  });
});

describe('inbox transport: plain HTTP only on loopback', () => {
  test('loopback means 127.0.0.0/8, ::1 and localhost, in any spelling; nothing else', () => {
    for (const host of ['127.0.0.1', '127.12.0.3', 'localhost', 'LocalHost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect([host, isLoopbackHost(host)]).toEqual([host, true]);
    for (const host of ['0.0.0.0', '::', '10.1.2.3', '192.168.0.10', '::ffff:10.0.0.1', '127.evil.example', 'inbox.example.com', '', '::2']) expect([host, isLoopbackHost(host)]).toEqual([host, false]);
  });

  test('on 0.0.0.0 without TLS or insecureHttp the inbox refuses to start, before listening, and says what to do', async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      const start = createInboxServer(inboxOptions({ host }));
      await expect(start).rejects.toThrow(InboxConfigError);
      await expect(start).rejects.toThrow(/not a loopback address.*--tls-cert FILE --tls-key FILE.*127\.0\.0\.1 behind an HTTPS proxy.*insecureHttp: true \(--insecure-http\)/);
    }
  });

  test('warden inbox --host 0.0.0.0 exits 2 naming --tls-cert, --tls-key and --insecure-http; half a TLS pair is refused too', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'warden-front-doors-'));
    try {
      const env = { ...process.env, WARDEN_HOME: home, TEMPORAL_ADDRESS: settings().address };
      const open = await runCli(['inbox', '--host', '0.0.0.0', '--port', '0'], env);
      expect(open.code).toBe(2);
      expect(open.stderr).toMatch(/--host 0\.0\.0\.0 is not a loopback address.*--tls-cert FILE and --tls-key FILE.*--insecure-http/);
      const half = await runCli(['inbox', '--tls-cert', path.join(home, 'cert.pem')], env);
      expect(half.code).toBe(2);
      expect(half.stderr).toContain('--tls-cert and --tls-key go together');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  const openssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
  if (!openssl) console.warn('front-doors: openssl is not installed, so the HTTPS inbox case is skipped');
  (openssl ? test : test.skip)(`${openssl ? '' : '[SKIPPED: openssl not installed] '}with a certificate the inbox serves HTTPS and its session cookie is Secure`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-tls-'));
    try {
      const certFile = path.join(dir, 'cert.pem');
      const keyFile = path.join(dir, 'key.pem');
      const made = spawnSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
        { encoding: 'utf8' },
      );
      if (made.status !== 0) throw new Error(`openssl could not make a test certificate: ${made.stderr}`);
      const cert = readFileSync(certFile);
      const inbox = await createInboxServer(inboxOptions({ tls: { cert, key: readFileSync(keyFile) } }));
      try {
        expect(inbox.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        // A browser's Origin for this page is https://…: the same-origin check must expect it.
        const answer = await login(inbox.url, 'alice', rightPassword('alice'), '/', { headers: { origin: inbox.url }, ca: cert });
        expect(answer.status).toBe(303);
        const setCookie = answer.headers['set-cookie']?.[0] ?? '';
        expect(setCookie).toMatch(/^warden_session=[^;]+;/);
        expect(setCookie.split(';').map((p) => p.trim())).toContain('Secure');
        const home = await send(`${inbox.url}/`, { headers: { cookie: setCookie.split(';')[0] ?? '' }, ca: cert });
        expect(home.status).toBe(200);
      } finally {
        await inbox.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CLI output: control characters from runs are shown, not obeyed', () => {
  test('printable escapes C0, C1, DEL and bidi controls as visible \\u text, newline and tab included', () => {
    expect(printable('\u001b]0;pwned\u0007')).toBe('\\u001b]0;pwned\\u0007');
    expect(printable('\u001b[2J')).toBe('\\u001b[2J');
    expect(printable('a\nb\tc\r')).toBe('a\\u000ab\\u0009c\\u000d');
    expect(printable('\u009b31m\u007f')).toBe('\\u009b31m\\u007f');
    expect(printable('refund\u202etxt.exe')).toBe('refund\\u202etxt.exe');
    expect(printable('Zoë pays €12 → ok ✓ 日本')).toBe('Zoë pays €12 → ok ✓ 日本');
  });

  test('the approvals table shows a tool name, arguments and approvers carrying escapes as text', () => {
    const approval: PendingApproval = {
      approvalId: 'ap-1',
      runId: 'warden/test-agent/1',
      callId: 'c1',
      tool: 'refund\u001b]0;pwned\u0007',
      args: { note: '\u001b[2Jcleared', eight: '\u009b2J' },
      ruleId: 'rule\u001b[8m',
      reason: 'r',
      approvers: ['group:finance\u001b[0m'],
      quorum: 1,
      approvals: [],
      requester: 'carol',
      createdAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
      escalated: false,
      paused: false,
    };
    const lines = approvalsTable([approval]);
    for (const line of lines) expect(line).not.toMatch(RAW_CONTROL);
    expect(lines[1]).toContain('refund\\u001b]0;pwned\\u0007');
    expect(lines[1]).toContain('\\u009b2J');
    expect(lines[1]).toContain('group:finance\\u001b[0m');
  });

  test('audit lines and a run outcome escape what the store and the model wrote', () => {
    const event = { seq: 1, at: '2025-01-01T00:00:00.000Z', type: 'tool_succeeded', data: { tool: 'x\u001b[2J', summary: 'ok\u001b]0;pwned\u0007 done' }, prevHash: '', hash: '' } as AuditEvent;
    const [line] = auditLines([event]);
    expect(line).not.toMatch(RAW_CONTROL);
    expect(line).toContain('tool=x\\u001b[2J');
    const outcome = { status: 'completed', reason: 'done\u001b[1A', steps: 1, toolCalls: 1, usage: { inputTokens: 1, outputTokens: 1, costUsd: 0 }, policyVersion: 'p1', text: 'all good\n\u001b[2Jreally' } as RunOutcome;
    for (const l of outcomeLines('warden/test-agent/1', outcome)) expect(l).not.toMatch(RAW_CONTROL);
    expect(outcomeLines('warden/test-agent/1', outcome).join('\n')).toContain('answer: all good\\u000a\\u001b[2Jreally');
  });

  test('--json output escapes the C1 controls JSON.stringify leaves in, and parses to the same value', () => {
    const value = { tool: 'refund\u009b2J\u001b[2J', note: 'a\u202eb' };
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      outJson(value);
    } finally {
      spy.mockRestore();
    }
    const text = written.join('');
    expect(text.replace(/\n/g, '')).not.toMatch(RAW_CONTROL);
    expect(text).not.toContain('\u202e');
    expect(JSON.parse(text)).toEqual(value);
  });
});
