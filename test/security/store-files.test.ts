import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emptyAuditHead, nextAuditEvent } from '../../src/governance';
import { createSqliteStore, type RunStore } from '../../src/store';

const modeOf = (file: string): number => statSync(file).mode & 0o777;

describe('run store files are private to their owner', () => {
  let dir: string;
  let store: RunStore | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-store-files-'));
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the directory 0700 and the database with its -wal and -shm files 0600', async () => {
    const storeDir = path.join(dir, '.warden');
    const file = path.join(storeDir, 'warden.db');
    store = createSqliteStore(file);
    await store.appendMessages('run-1', [{ seq: 0, message: { role: 'user', content: 'secret goal' } }]);
    await store.appendAudit('run-1', [nextAuditEvent(emptyAuditHead(), 'run_started', { goal: 'secret goal' }, '2026-01-01T00:00:00.000Z')]);

    // While the store is open, WAL mode keeps both companion files next to the database.
    expect(existsSync(`${file}-wal`)).toBe(true);
    expect(existsSync(`${file}-shm`)).toBe(true);
    expect(modeOf(storeDir)).toBe(0o700);
    for (const name of readdirSync(storeDir)) expect([name, modeOf(path.join(storeDir, name))]).toEqual([name, 0o600]);
  });

  it('narrows an existing database file (and a leftover -wal) that is more open than 0600', async () => {
    // A directory the store did not create is the owner's choice (it may be the working directory).
    chmodSync(dir, 0o755);
    const file = path.join(dir, 'warden.db');
    writeFileSync(file, '');
    writeFileSync(`${file}-wal`, '');
    chmodSync(file, 0o644);
    chmodSync(`${file}-wal`, 0o666);

    store = createSqliteStore(file);
    await store.appendMessages('run-1', [{ seq: 0, message: 'hello' }]);

    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect([f, modeOf(f)]).toEqual([f, 0o600]);
    expect(modeOf(dir)).toBe(0o755);
  });

  it('does not widen an existing file that is narrower than 0600', () => {
    const file = path.join(dir, 'warden.db');
    writeFileSync(file, '');
    chmodSync(file, 0o400);
    try {
      store = createSqliteStore(file);
    } catch {
      // A non-root owner cannot write a 0400 file, so opening fails; root can. The mode is what counts.
    }
    expect(modeOf(file)).toBe(0o400);
  });
});
