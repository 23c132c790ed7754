import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw } from 'node:zlib';
import { LocalModelError } from './catalog';

/** The end-of-central-directory record: at most 64 KiB of comment after it. */
const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/**
 * Writes one entry of a zip archive (a Python wheel) to `target`, streaming it through zlib.
 * Enough of the format for wheels: stored or deflated entries, no ZIP64, no encryption. Node has
 * inflate but no zip reader, and none is among Warden's dependencies; the entry's size is checked
 * here and its digest by the caller.
 */
export async function extractZipEntry(archive: string, entry: string, target: string): Promise<number> {
  const file = await open(archive, 'r');
  try {
    const { size } = await file.stat();
    const tail = await readAt(file, Math.max(0, size - 65_557), Math.min(size, 65_557));
    let eocd = -1;
    for (let i = tail.length - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIGNATURE) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new LocalModelError(`${archive} is not a zip archive (no end of central directory)`);
    const count = tail.readUInt16LE(eocd + 10);
    const dirSize = tail.readUInt32LE(eocd + 12);
    const dirOffset = tail.readUInt32LE(eocd + 16);
    const dir = await readAt(file, dirOffset, dirSize);
    let at = 0;
    for (let n = 0; n < count && at + 46 <= dir.length; n++) {
      if (dir.readUInt32LE(at) !== CENTRAL_SIGNATURE) break;
      const method = dir.readUInt16LE(at + 10);
      const compressed = dir.readUInt32LE(at + 20);
      const uncompressed = dir.readUInt32LE(at + 24);
      const nameLength = dir.readUInt16LE(at + 28);
      const extraLength = dir.readUInt16LE(at + 30);
      const commentLength = dir.readUInt16LE(at + 32);
      const localOffset = dir.readUInt32LE(at + 42);
      const name = dir.subarray(at + 46, at + 46 + nameLength).toString('utf8');
      at += 46 + nameLength + extraLength + commentLength;
      if (name !== entry) continue;
      if (method !== 0 && method !== 8) throw new LocalModelError(`${entry} in ${archive} uses zip method ${method}; only stored and deflated entries are read`);
      const local = await readAt(file, localOffset, 30);
      if (local.length < 30 || local.readUInt32LE(0) !== LOCAL_SIGNATURE) throw new LocalModelError(`${archive}: the local header of ${entry} is damaged`);
      const start = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const source = file.createReadStream({ start, end: start + compressed - 1, autoClose: false });
      const sink = createWriteStream(target, { flags: 'wx' });
      if (method === 8) await pipeline(source, createInflateRaw(), sink);
      else await pipeline(source, sink);
      return uncompressed;
    }
    throw new LocalModelError(`${archive} has no entry ${entry}`);
  } finally {
    await file.close();
  }
}
