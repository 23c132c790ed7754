/**
 * The codec endpoint hands out clear payloads (`/codec/decode`) and makes ciphertext the workers
 * accept (`/codec/encode`): being signed in to the inbox is not enough for either. Attacked over
 * real HTTP on 127.0.0.1 by a person of the support group, who decides nothing.
 */
import type { Payload } from '@temporalio/common';
import pino from 'pino';
import { Writable } from 'node:stream';
import { DecisionSigner, createInboxServer, localUsersAuthenticator, type InboxServer } from '../../src/approvals';
import { hashPassword } from '../../src/approvals/auth/password';
import { WardenClient } from '../../src/client';
import { ENCRYPTED_ENCODING } from '../../src/codec';
import { generateSigningKey } from '../../src/governance';
import { settings, testPayloadCodec } from '../helpers';

const SECRET = 'iban-DE89-3704-SECRET';
const codec = testPayloadCodec();
const json = (value: unknown): Payload => ({ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) });
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});
type Answer = { payloads?: { metadata: Record<string, string>; data: string }[]; error?: string; requiredGroups?: string[] };

/** The people: sam answers support tickets, alice approves refunds, olga operates the runs. */
const PEOPLE = [
  { id: 'sam', groups: ['support'] },
  { id: 'alice', groups: ['finance', 'approvers'] },
  { id: 'olga', groups: ['Operators'] },
];

let client: WardenClient;
let inbox: InboxServer;
const logged: Record<string, unknown>[] = [];
const cookies = new Map<string, string>();

async function signIn(url: string, id: string): Promise<string> {
  const res = await fetch(`${url}/login`, { method: 'POST', body: new URLSearchParams({ username: id, password: `${id}-pw-123`, next: '/' }), redirect: 'manual' });
  expect(res.status).toBe(303);
  return (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
}

const post = (url: string, op: string, body: unknown, cookie: string) =>
  fetch(`${url}/codec/${op}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', cookie }, body: JSON.stringify(body) });

beforeAll(async () => {
  client = await WardenClient.connect(settings(), undefined, { payloadCodec: codec });
  const users = await Promise.all(PEOPLE.map(async (p) => ({ ...p, password: await hashPassword(`${p.id}-pw-123`) })));
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logged.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  inbox = await createInboxServer({
    client,
    signer: new DecisionSigner({ keyId: 'test-web', ...generateSigningKey() }),
    auth: localUsersAuthenticator(users),
    logger: pino({ level: 'info' }, sink),
    // The defaults: operators and approvers decode, operators encode.
    codec: { codec, uiOrigin: 'http://127.0.0.1:1' },
  });
  for (const p of PEOPLE) cookies.set(p.id, await signIn(inbox.url, p.id));
});
afterAll(async () => {
  await inbox?.close();
  await client?.close();
});

describe('who may use the codec endpoint', () => {
  test('a signed-in person of the support group gets 403 from decode and from encode, naming the groups it takes; nothing is decrypted or encrypted', async () => {
    const [sealed] = await codec.encode([json({ iban: SECRET })]);
    const cookie = cookies.get('sam') ?? '';
    const decode = await post(inbox.url, 'decode', { payloads: [toJson(sealed as Payload)] }, cookie);
    expect(decode.status).toBe(403);
    const decodeText = await decode.text();
    expect(decodeText).not.toContain(Buffer.from(SECRET).toString('base64'));
    expect(JSON.parse(decodeText)).toEqual({
      error: 'sam may not decode payloads: decoding needs a group of operators, approvers (sam is in support)',
      requiredGroups: ['operators', 'approvers'],
    });
    const encode = await post(inbox.url, 'encode', { payloads: [toJson(json({ by: 'sam' }))] }, cookie);
    expect(encode.status).toBe(403);
    const refused = (await encode.json()) as Answer;
    expect(refused).toEqual({ error: 'sam may not encode payloads: encoding needs a group of operators (sam is in support)', requiredGroups: ['operators'] });
    expect(refused.payloads).toBeUndefined();
    // Each refusal is in the log with who, which route and why.
    expect(logged).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ user: 'sam', op: 'decode', refused: expect.stringContaining('decoding needs a group of operators, approvers') as unknown }),
        expect.objectContaining({ user: 'sam', op: 'encode', refused: expect.stringContaining('encoding needs a group of operators') as unknown }),
      ]),
    );
  });

  test('an approver may decode, but may not encode', async () => {
    const [sealed] = await codec.encode([json({ iban: SECRET })]);
    const cookie = cookies.get('alice') ?? '';
    const decode = await post(inbox.url, 'decode', { payloads: [toJson(sealed as Payload)] }, cookie);
    expect(decode.status).toBe(200);
    const { payloads } = (await decode.json()) as Answer;
    expect(JSON.parse(Buffer.from(payloads?.[0]?.data ?? '', 'base64').toString())).toEqual({ iban: SECRET });
    const encode = await post(inbox.url, 'encode', { payloads: [toJson(json({ by: 'alice' }))] }, cookie);
    expect(encode.status).toBe(403);
    expect(((await encode.json()) as Answer).error).toBe('alice may not encode payloads: encoding needs a group of operators (alice is in finance, approvers)');
    expect(logged).toEqual(expect.arrayContaining([expect.objectContaining({ user: 'alice', op: 'decode', payloads: 1, msg: 'codec request' })]));
  });

  test('an operator may decode and encode (group names compare normalised: "Operators" is operators)', async () => {
    const cookie = cookies.get('olga') ?? '';
    const encode = await post(inbox.url, 'encode', { payloads: [toJson(json({ by: 'olga', reason: 'looks wrong' })), toJson(json(null))] }, cookie);
    expect(encode.status).toBe(200);
    const encoded = ((await encode.json()) as Answer).payloads ?? [];
    expect(encoded).toHaveLength(2);
    expect(Buffer.from(encoded[0]?.metadata.encoding ?? '', 'base64').toString()).toBe(ENCRYPTED_ENCODING);
    const decode = await post(inbox.url, 'decode', { payloads: encoded }, cookie);
    expect(decode.status).toBe(200);
    const back = ((await decode.json()) as Answer).payloads ?? [];
    expect(JSON.parse(Buffer.from(back[0]?.data ?? '', 'base64').toString())).toEqual({ by: 'olga', reason: 'looks wrong' });
    expect(logged).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ user: 'olga', op: 'encode', payloads: 2, msg: 'codec request' }),
        expect.objectContaining({ user: 'olga', op: 'decode', payloads: 2, msg: 'codec request' }),
      ]),
    );
  });

  test('the groups are the deployment\'s to choose; an empty list lets nobody encode', async () => {
    const users = await Promise.all(PEOPLE.map(async (p) => ({ ...p, password: await hashPassword(`${p.id}-pw-123`) })));
    const custom = await createInboxServer({
      client,
      signer: new DecisionSigner({ keyId: 'test-web', ...generateSigningKey() }),
      auth: localUsersAuthenticator(users),
      logger: pino({ level: 'silent' }),
      codec: { codec, uiOrigin: 'http://127.0.0.1:1', decodeGroups: ['support'], encodeGroups: [] },
    });
    try {
      const [sealed] = await codec.encode([json({ iban: SECRET })]);
      const sam = await signIn(custom.url, 'sam');
      expect((await post(custom.url, 'decode', { payloads: [toJson(sealed as Payload)] }, sam)).status).toBe(200);
      const olga = await signIn(custom.url, 'olga');
      expect((await post(custom.url, 'decode', { payloads: [toJson(sealed as Payload)] }, olga)).status).toBe(403);
      const encode = await post(custom.url, 'encode', { payloads: [] }, olga);
      expect(encode.status).toBe(403);
      expect(((await encode.json()) as Answer).error).toBe('olga may not encode payloads: encoding is turned off here (no group may encode)');
    } finally {
      await custom.close();
    }
  });
});
