/**
 * Sensitive data stays out of Temporal history in clear: every payload is encrypted by the
 * payload codec, keys rotate without losing old runs, and the codec endpoint the Temporal UI
 * decodes through answers only people the web inbox signed in, and only the UI's origin.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../browser';
import pino from 'pino';
import { DecisionSigner, createInboxServer, loadUsersFile, localUsersAuthenticator, type InboxServer } from '../../src/approvals';
import {
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  PayloadCodecError,
  PayloadKeyError,
  createPayloadKeyFile,
  ensureDevPayloadKeys,
  loadPayloadKeys,
} from '../../src/codec';
import { resolveTemporalBinary } from '../../src/dev-server';
import { generateSigningKey } from '../../src/governance';
import { createTestBed, settings, testPayloadCodec, testPolicy, type TestBed } from '../helpers';

const SECRET = 'pin-7Q4ZK-SECRET-9931';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-payload-enc-'));
const hexKey = (c: string) => c.repeat(64);
const json = (value: unknown): Payload => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('utf8');

/** A run whose tool arguments carry the secret in the field the tool marks sensitive. */
function startSecretRun(bed: TestBed): Promise<string> {
  return bed.client.startRun({
    agent: 'test-agent',
    goal: 'pay the supplier',
    requester: 'carol',
    policy: testPolicy(),
    script: [{ toolCalls: [{ name: 'transfer', args: { amount: 25, to: 'acct-7', pin: SECRET } }] }, { text: 'paid' }],
  });
}

/** A client of the plain SDK, without any codec: what anyone with namespace access sees. */
async function plainClient(): Promise<Client> {
  const { address, namespace } = settings();
  return new Client({ connection: await Connection.connect({ address }), namespace });
}

/** The whole history as protobuf bytes: any field that held the secret in clear would contain its bytes. */
async function rawHistory(client: Client, runId: string): Promise<{ bytes: Buffer; history: temporal.api.history.v1.IHistory }> {
  const history = await client.workflow.getHandle(runId).fetchHistory();
  return { bytes: Buffer.from(temporal.api.history.v1.History.encode(history).finish()), history };
}

/** `temporal workflow show --output json` (payload data in base64), and the same history as protobuf bytes. */
async function cliHistory(runId: string): Promise<{ text: string; bytes: Buffer }> {
  const { address, namespace } = settings();
  const text = execFileSync(await resolveTemporalBinary(), ['workflow', 'show', '--workflow-id', runId, '--output', 'json', '--address', address, '--namespace', namespace], { encoding: 'utf8' });
  return { text, bytes: Buffer.from(temporal.api.history.v1.History.encode(historyFromJSON(JSON.parse(text))).finish()) };
}

/**
 * Every payload of a history, wherever it sits in an event, except search attributes: Temporal
 * indexes those, so codecs never see them (Warden's hold agent, requester and status only); and
 * except the bookkeeping the SDK's core writes itself, in clear, into markers: a patch's name
 * (`patch-data`) and a local activity's seq, attempt, type and times (`data`; its result is
 * encrypted). The test below checks what those hold.
 */
const CORE_MARKER_DETAILS = new Set(['patch-data', 'data']);
function payloadsOf(value: unknown, out: Payload[] = []): Payload[] {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return out;
  const marker = value as { markerName?: unknown; details?: Record<string, unknown> };
  if (typeof marker.markerName === 'string' && marker.details) {
    for (const [k, v] of Object.entries(marker.details)) if (!CORE_MARKER_DETAILS.has(k)) payloadsOf(v, out);
    return out;
  }
  if (Array.isArray(value)) {
    for (const v of value) payloadsOf(v, out);
    return out;
  }
  const record = value as Record<string, unknown>;
  if (record.metadata && typeof record.metadata === 'object' && 'data' in record) out.push(record);
  for (const [k, v] of Object.entries(record)) if (k !== 'searchAttributes') payloadsOf(v, out);
  return out;
}

describe('payloads in Temporal history', () => {
  let bed: TestBed;
  let plain: Client;
  beforeAll(async () => {
    bed = await createTestBed();
    plain = await plainClient();
  });
  afterAll(async () => {
    await plain?.connection.close();
    await bed?.close();
  });

  test('a run with a sensitive tool argument completes, and its raw history holds the secret nowhere', async () => {
    const runId = await startSecretRun(bed);
    // The codec-aware client reads the outcome and the queries as usual.
    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed', text: 'paid', toolCalls: 1 });
    await expect(bed.client.status(runId)).resolves.toMatchObject({ outcome: { status: 'completed' } });

    const { bytes, history } = await rawHistory(plain, runId);
    expect(bytes.includes(SECRET)).toBe(false);
    const payloads = payloadsOf(history.events);
    // The clear payloads core writes into markers hold bookkeeping only (names, seq, attempt, times).
    const coreDetails = (history.events ?? []).flatMap((e) => Object.entries(e.markerRecordedEventAttributes?.details ?? {}).filter(([k]) => CORE_MARKER_DETAILS.has(k)));
    const coreTexts = coreDetails.flatMap(([, d]) => (d.payloads ?? []).map((p) => JSON.parse(Buffer.from(p.data ?? new Uint8Array()).toString('utf8')) as Record<string, unknown>));
    for (const t of coreTexts) expect(Object.keys(t).every((key) => ['id', 'deprecated', 'seq', 'attempt', 'activity_id', 'activity_type', 'complete_time', 'backoff', 'original_schedule_time'].includes(key))).toBe(true);
    // Input, activity inputs and results, the result: all of them encrypted, with the key id in clear.
    expect(payloads.length).toBeGreaterThan(5);
    const encodings = new Set(payloads.map((p) => text(p.metadata?.encoding)));
    expect([...encodings]).toEqual([ENCRYPTED_ENCODING]);
    expect(new Set(payloads.map((p) => text(p.metadata?.['encryption-key-id'])))).toEqual(new Set(['test-1']));

    const shown = await cliHistory(runId);
    expect(shown.text).not.toContain(SECRET);
    expect(shown.bytes.includes(SECRET)).toBe(false);
    expect(shown.text).toContain(Buffer.from(ENCRYPTED_ENCODING).toString('base64'));

    // A history exported by the CLI replays with the codec (as test/histories do), and not without it.
    const exported = historyFromJSON(JSON.parse(shown.text));
    const workflowBundle = { codePath: process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '' };
    await Worker.runReplayHistory({ workflowBundle, dataConverter: { payloadCodecs: [testPayloadCodec()] } }, exported, runId);
    await expect(Worker.runReplayHistory({ workflowBundle }, exported, runId)).rejects.toThrow();
  });

  test('a tool failure\'s message and stack are encrypted too (failures travel as payloads)', async () => {
    const runId = await bed.client.startRun({ agent: 'test-agent', goal: 'x', requester: 'carol', policy: testPolicy(), script: [{ toolCalls: [{ name: 'broken', args: {} }] }, { text: 'gave up' }] });
    await expect(bed.client.result(runId)).resolves.toMatchObject({ status: 'completed' });
    const { bytes } = await rawHistory(plain, runId);
    // The tool's error text reaches the model (it is in the run store), never Temporal's history in clear.
    expect(bytes.includes('the downstream system refused the request')).toBe(false);
    expect(JSON.stringify(await bed.store.readMessages(runId, 3))).toContain('the downstream system refused the request');
  });

  test('control: without a codec the same run puts the secret in history, where both checks find it; such a history still replays with the codec', async () => {
    const clear = await createTestBed({ payloadCodec: null });
    try {
      const runId = await startSecretRun(clear);
      await expect(clear.client.result(runId)).resolves.toMatchObject({ status: 'completed' });
      expect((await rawHistory(plain, runId)).bytes.includes(SECRET)).toBe(true);
      const shown = await cliHistory(runId);
      expect(shown.bytes.includes(SECRET)).toBe(true);
      // Histories recorded before encryption: the codec passes their payloads through.
      const workflowBundle = { codePath: process.env.WARDEN_TEST_WORKFLOW_BUNDLE ?? '' };
      await Worker.runReplayHistory({ workflowBundle, dataConverter: { payloadCodecs: [testPayloadCodec()] } }, historyFromJSON(JSON.parse(shown.text)), runId);
    } finally {
      await clear.close();
    }
  });
});

describe('key rotation', () => {
  const keyA = { current: 'key-a', keys: { 'key-a': hexKey('a') } };
  const keyAB = { current: 'key-b', keys: { 'key-a': hexKey('a'), 'key-b': hexKey('b') } };
  const onlyB = { current: 'key-b', keys: { 'key-b': hexKey('b') } };

  test('payloads written under key A decode after current becomes B; new ones use B', async () => {
    const [underA] = await new EncryptionCodec(keyA).encode([json({ pin: SECRET })]);
    const rotated = new EncryptionCodec(keyAB);
    const [decoded] = await rotated.decode([underA as Payload]);
    expect(JSON.parse(text(decoded?.data))).toEqual({ pin: SECRET });
    expect(text(decoded?.metadata?.encoding)).toBe('json/plain');
    const [underB] = await rotated.encode([json({ pin: SECRET })]);
    expect(text(underB?.metadata?.['encryption-key-id'])).toBe('key-b');
    expect(Buffer.from(underB?.data ?? []).includes(SECRET)).toBe(false);
  });

  test('an unknown key id is a clear error naming it; unencrypted payloads pass through; tampering is caught', async () => {
    const [underA] = await new EncryptionCodec(keyA).encode([json({ pin: SECRET })]);
    const codec = new EncryptionCodec(onlyB);
    await expect(codec.decode([underA as Payload])).rejects.toThrow(PayloadKeyError);
    await expect(codec.decode([underA as Payload])).rejects.toThrow(/encrypted with key "key-a", which is not in this keyset/);
    const clear = json({ note: 'recorded before encryption' });
    await expect(codec.decode([clear])).resolves.toEqual([clear]);
    const data = Buffer.from(underA?.data ?? []);
    data[20] = (data[20] ?? 0) ^ 1;
    await expect(new EncryptionCodec(keyA).decode([{ ...underA, data }])).rejects.toThrow(PayloadCodecError);
    // Same id, other material: the error says the key is not the one the payload was written with.
    await expect(new EncryptionCodec({ current: 'key-a', keys: { 'key-a': hexKey('c') } }).decode([underA as Payload])).rejects.toThrow(/"key-a" does not decrypt/);
  });

  test('each payload gets its own IV: the same value encrypts differently twice', async () => {
    const codec = new EncryptionCodec(keyA);
    const [one, two] = await codec.encode([json('same'), json('same')]);
    expect(Buffer.from(one?.data ?? []).equals(Buffer.from(two?.data ?? []))).toBe(false);
  });

  test('a run started under key A is finished by a worker whose current key is B; a client without A or B cannot read it', async () => {
    const taskQueue = `rotation-${Math.random().toString(36).slice(2, 8)}`;
    const before = await createTestBed({ taskQueue, payloadCodec: new EncryptionCodec(keyA) });
    let after: TestBed | undefined;
    const plain = await plainClient();
    try {
      // No worker yet: the start input is written under A, everything after under B.
      await before.stopWorker();
      const runId = await startSecretRun(before);
      after = await createTestBed({ taskQueue, payloadCodec: new EncryptionCodec(keyAB) });
      await expect(after.client.result(runId)).resolves.toMatchObject({ status: 'completed', toolCalls: 1 });
      const { history, bytes } = await rawHistory(plain, runId);
      expect(bytes.includes(SECRET)).toBe(false);
      expect(new Set(payloadsOf(history.events).map((p) => text(p.metadata?.['encryption-key-id'])))).toEqual(new Set(['key-a', 'key-b']));
      // The client that only has A cannot read the result written under B, and says which key it lacks.
      await expect(before.client.handle(runId).result()).rejects.toThrow(/key "key-b"/);
      // Listing runs needs no payload key: search attributes are in clear, memos are not decoded.
      await expect(before.client.listRuns({ open: false, idPrefix: runId })).resolves.toMatchObject([{ runId, status: 'completed' }]);
      // Other suites list runs on the same server with the suite's own key: leave nothing they cannot read.
      await plain.workflowService.deleteWorkflowExecution({ namespace: settings().namespace, workflowExecution: { workflowId: runId } });
    } finally {
      await plain.connection.close();
      await after?.close();
      await before.close();
    }
  });
});

describe('payload key files', () => {
  test('createPayloadKeyFile writes a 0600 file with a random key and refuses to overwrite it', () => {
    const file = path.join(tmp, 'made', 'payload.json');
    const keys = createPayloadKeyFile(file, 'k1');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(keys.current).toBe('k1');
    expect(keys.keys.k1).toMatch(/^[0-9a-f]{64}$/);
    expect(loadPayloadKeys(file)).toEqual(keys);
    expect(() => createPayloadKeyFile(file)).toThrow(/exists already/);
    expect(createPayloadKeyFile(path.join(tmp, 'made', 'other.json')).keys).not.toEqual(keys.keys);
  });

  test('a key file group or others can read is refused, with the chmod that fixes it', () => {
    const file = path.join(tmp, 'open.json');
    writeFileSync(file, JSON.stringify({ current: 'k', keys: { k: hexKey('1') } }));
    chmodSync(file, 0o644);
    expect(() => loadPayloadKeys(file)).toThrow(`payload key file ${file} is open to group or others (mode 0644); run: chmod 600 ${file}`);
    chmodSync(file, 0o600);
    expect(loadPayloadKeys(file).current).toBe('k');
  });

  test('errors name the file and what is wrong, never the key', () => {
    const bad = (name: string, content: string) => {
      const file = path.join(tmp, name);
      writeFileSync(file, content, { mode: 0o600 });
      return file;
    };
    expect(() => loadPayloadKeys(path.join(tmp, 'missing.json'))).toThrow(/cannot read payload key file .*missing\.json/);
    expect(() => loadPayloadKeys(bad('not-json.json', '{'))).toThrow(/not-json\.json/);
    const short = bad('short.json', JSON.stringify({ current: 'k', keys: { k: 'abcdef' } }));
    expect(() => loadPayloadKeys(short)).toThrow(/short\.json.*64 hex characters/);
    expect(() => loadPayloadKeys(short)).not.toThrow(/abcdef/);
    const dangling = bad('dangling.json', JSON.stringify({ current: 'gone', keys: { k: hexKey('2') } }));
    expect(() => loadPayloadKeys(dangling)).toThrow(/dangling\.json.*must name one of the keys/);
  });

  test('ensureDevPayloadKeys creates <home>/keys/payload.json once and reuses it', () => {
    const home = path.join(tmp, 'home');
    const first = ensureDevPayloadKeys(home);
    expect(first).toMatchObject({ file: path.join(home, 'keys', 'payload.json'), created: true });
    const second = ensureDevPayloadKeys(home);
    expect(second.created).toBe(false);
    expect(second.keys).toEqual(first.keys);
    expect(JSON.parse(readFileSync(first.file, 'utf8'))).toEqual(first.keys);
  });
});

describe('codec endpoint in the web inbox', () => {
  const USERS_FILE = path.join(__dirname, '..', 'fixtures', 'approvals', 'users.yaml');
  const MAX = 64 * 1024;
  const codec = testPayloadCodec();
  let bed: TestBed;
  let inbox: InboxServer;
  let ui: Server;
  let otherSite: Server;
  let uiOrigin: string;
  let cookie: string;

  const page = (_req: unknown, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>fake Temporal UI</title>');
  };
  const listenOn = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    bed = await createTestBed();
    ui = createServer(page);
    otherSite = createServer(page);
    uiOrigin = await listenOn(ui);
    await listenOn(otherSite);
    const webKey = { keyId: 'test-web', ...generateSigningKey() };
    inbox = await createInboxServer({
      client: bed.client,
      store: bed.store,
      signer: new DecisionSigner(webKey),
      auth: localUsersAuthenticator(loadUsersFile(USERS_FILE)),
      logger: pino({ level: 'silent' }),
      // alice (finance) stands for a person allowed both: who may is codec-roles.test.ts's subject.
      codec: { codec, uiOrigin, maxBodyBytes: MAX, decodeGroups: ['finance'], encodeGroups: ['finance'] },
    });
    const login = await fetch(`${inbox.url}/login`, { method: 'POST', body: new URLSearchParams({ username: 'alice', password: 'alice-pw-123', next: '/' }), redirect: 'manual' });
    expect(login.status).toBe(303);
    cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(cookie).toMatch(/^warden_session=./);
  });
  afterAll(async () => {
    await inbox?.close();
    await new Promise((r) => ui?.close(r));
    await new Promise((r) => otherSite?.close(r));
    await bed?.close();
  });

  const toJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });
  const post = (op: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${inbox.url}/codec/${op}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  test('decode with a valid inbox session answers the clear payloads', async () => {
    const [encrypted] = await codec.encode([json({ pin: SECRET })]);
    const res = await post('decode', { payloads: [toJson(encrypted as Payload)] }, { cookie });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { payloads } = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(Buffer.from(payloads[0]?.metadata.encoding ?? '', 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(payloads[0]?.data ?? '', 'base64').toString())).toEqual({ pin: SECRET });
  });

  test('encode with a session gives payloads the workers can decode', async () => {
    const res = await post('encode', { payloads: [toJson(json({ from: 'ui' }))] }, { cookie });
    expect(res.status).toBe(200);
    const { payloads } = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    const wire: Payload = { metadata: Object.fromEntries(Object.entries(payloads[0]?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])), data: Buffer.from(payloads[0]?.data ?? '', 'base64') };
    expect(text(wire.metadata?.encoding)).toBe(ENCRYPTED_ENCODING);
    const [back] = await testPayloadCodec().decode([wire]);
    expect(JSON.parse(text(back?.data))).toEqual({ from: 'ui' });
  });

  test('without a session, or with a forged one, it is 401 and nothing is decoded', async () => {
    const [encrypted] = await codec.encode([json({ pin: SECRET })]);
    const body = { payloads: [toJson(encrypted as Payload)] };
    for (const headers of [{}, { cookie: 'warden_session=forged' }, { authorization: 'Bearer nope' }] as Record<string, string>[]) {
      const res = await post('decode', body, headers);
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain(Buffer.from(SECRET).toString('base64'));
    }
  });

  test('CORS: the preflight answers the configured UI origin only, with credentials and the UI headers', async () => {
    const preflight = (origin: string) =>
      fetch(`${inbox.url}/codec/decode`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' } });
    const ok = await preflight(uiOrigin);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-headers')).toEqual(expect.stringContaining('content-type,x-namespace,authorization'));
    expect(ok.headers.get('access-control-allow-methods')).toBe('POST');
    const refused = await preflight('http://evil.example');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    // A POST from another origin is refused even with a session (a cookie is no proof of intent).
    const [encrypted] = await codec.encode([json(1)]);
    const cross = await post('decode', { payloads: [toJson(encrypted as Payload)] }, { cookie, origin: 'http://evil.example' });
    expect(cross.status).toBe(403);
  });

  test('a body over the limit gets 413, whether it declares its length or streams it', async () => {
    const big = JSON.stringify({ payloads: [{ metadata: {}, data: 'A'.repeat(MAX + 10) }] });
    const declared = await post('decode', big, { cookie });
    expect(declared.status).toBe(413);
    // Chunked: no Content-Length, so only counting the bytes read can stop it.
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${inbox.url}/codec/decode`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', cookie, 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      // The server may close the socket before the upload ends; the status already arrived.
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      for (let i = 0; i < 20; i++) req.write('A'.repeat(8 * 1024));
      req.end();
    });
    expect(status).toBe(413);
  });

  test('bad requests name what is wrong; other routes and methods are refused', async () => {
    expect((await post('decode', '{', { cookie })).status).toBe(400);
    const wrongShape = await post('decode', { payload: [] }, { cookie });
    expect(wrongShape.status).toBe(400);
    expect(await wrongShape.text()).toContain('payloads');
    expect((await post('decode', 'x', { cookie, 'content-type': 'text/plain' })).status).toBe(415);
    expect((await post('other', { payloads: [] }, { cookie })).status).toBe(404);
    expect((await fetch(`${inbox.url}/codec/decode`, { headers: { cookie } })).status).toBe(405);
    const [foreign] = await new EncryptionCodec({ current: 'elsewhere', keys: { elsewhere: hexKey('e') } }).encode([json(1)]);
    const unknown = await post('decode', { payloads: [toJson(foreign as Payload)] }, { cookie });
    expect(unknown.status).toBe(422);
    expect(await unknown.text()).toContain('key \\"elsewhere\\"');
  });

  describe('from a browser', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(async () => browser?.close());

    test('the UI origin decodes with the inbox session cookie (same site, other port); another origin cannot read the answer', async () => {
      const context = await browser.newContext();
      const tab = await context.newPage();
      await tab.goto(`${inbox.url}/login`);
      await tab.fill('#username', 'alice');
      await tab.fill('#password', 'alice-pw-123');
      await Promise.all([tab.waitForURL(`${inbox.url}/`), tab.click('form.login button[type=submit]')]);
      const [encrypted] = await codec.encode([json({ pin: SECRET })]);
      const body = JSON.stringify({ payloads: [toJson(encrypted as Payload)] });
      // What the Temporal UI does with "Include cross-origin credentials" on.
      const decodeFrom = async (origin: string, credentials: 'include' | 'same-origin') => {
        await tab.goto(origin);
        return tab.evaluate(
          async ({ url, body, credentials }) => {
            try {
              const res = await fetch(url, { method: 'POST', credentials, headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default' }, body });
              return { status: res.status, text: await res.text() };
            } catch (err) {
              return { status: 0, text: String(err) };
            }
          },
          { url: `${inbox.url}/codec/decode`, body, credentials },
        );
      };
      const fromUi = await decodeFrom(uiOrigin, 'include');
      expect(fromUi.status).toBe(200);
      expect(Buffer.from((JSON.parse(fromUi.text) as { payloads: { data: string }[] }).payloads[0]?.data ?? '', 'base64').toString()).toContain(SECRET);
      // The dev server's --ui-codec-endpoint leaves credentials off: then the cookie stays home.
      expect((await decodeFrom(uiOrigin, 'same-origin')).status).toBe(401);
      const fromElsewhere = await decodeFrom(`http://127.0.0.1:${(otherSite.address() as AddressInfo).port}`, 'include');
      expect(fromElsewhere.status).toBe(0);
      await context.close();
    });
  });
});
