import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSqliteStore, defaultStorePath } from '../src/store';
import { runStoreContract } from './store-contract';

describe('SQLite run store', () => {
  const current = runStoreContract({
    // A nested path proves the store creates missing parent directories.
    freshLocation: () => path.join(mkdtempSync(path.join(os.tmpdir(), 'warden-store-')), 'nested', 'warden.db'),
    open: (file) => createSqliteStore(file),
    remove: (file) => rmSync(path.dirname(path.dirname(file)), { recursive: true, force: true }),
  });

  it('creates the file and its parent directories', () => {
    expect(existsSync(current.location())).toBe(true);
  });
});

describe('defaultStorePath', () => {
  const saved = { db: process.env.WARDEN_DB, home: process.env.WARDEN_HOME };
  afterEach(() => {
    for (const [key, value] of [['WARDEN_DB', saved.db], ['WARDEN_HOME', saved.home]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('prefers WARDEN_DB, then WARDEN_HOME, then .warden', () => {
    delete process.env.WARDEN_DB;
    delete process.env.WARDEN_HOME;
    expect(defaultStorePath()).toBe(path.join('.warden', 'warden.db'));
    process.env.WARDEN_HOME = '/srv/warden';
    expect(defaultStorePath()).toBe(path.join('/srv/warden', 'warden.db'));
    process.env.WARDEN_DB = '/data/runs.db';
    expect(defaultStorePath()).toBe('/data/runs.db');
  });
});
