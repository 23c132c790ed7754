import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { emptyAuditHead, nextAuditEvent, type AuditEvent } from '../src/governance';
import { createPostgresStore, openRunStore, POSTGRES_SCHEMA_VERSION, redactStoreLocation, StoreError, type RunStore } from '../src/store';
import { runCli, repoRoot } from './fixtures/run-cli';
import { describeWithPostgres } from './postgres';
import { runStoreContract } from './store-contract';

/** Runs `sql` on the database at `url` with a connection of its own. */
async function sql<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

function auditTrail(n: number): AuditEvent[] {
  const events: AuditEvent[] = [];
  let head = emptyAuditHead();
  for (let i = 0; i < n; i++) {
    const event = nextAuditEvent(head, 'tool_succeeded', { callId: `c${i}`, tool: 'echo' }, `2025-01-01T00:00:00.${String(i).padStart(3, '0')}Z`);
    events.push(event);
    head = { seq: event.seq, hash: event.hash };
  }
  return events;
}

describeWithPostgres('PostgreSQL run store', (server) => {
  describe('the run store contract', () => {
    runStoreContract({
      freshLocation: () => server().createDatabase('contract'),
      open: (url) => createPostgresStore(url),
    });
  });

  describe('schema and migrations', () => {
    it('creates the tables at open and records the schema version once', async () => {
      const url = await server().createDatabase('migrate');
      const store = await createPostgresStore(url);
      await store.close();
      const again = await createPostgresStore(url);
      await again.close();
      const tables = await sql<{ table_name: string }>(url, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
      expect(tables.map((t) => t.table_name)).toEqual(['applied_policies', 'audit_events', 'kill_switches', 'messages', 'quota_reservations', 'rate_limits', 'rate_slots', 'run_claims', 'secrets', 'warden_schema_migrations']);
      const versions = await sql<{ version: number }>(url, 'SELECT version FROM warden_schema_migrations ORDER BY version');
      expect(versions.map((v) => v.version)).toEqual(Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
    });

    it('migrates once when several workers open a new database at the same moment', async () => {
      const url = await server().createDatabase('race');
      const stores = await Promise.all(Array.from({ length: 6 }, () => createPostgresStore(url, { poolSize: 2 })));
      try {
        // Every opener works on the one set of tables.
        await Promise.all(stores.map((s, i) => s.appendMessages('run-race', [{ seq: i, message: `from opener ${i}` }])));
        expect(await stores[0]!.readMessages('run-race', 6)).toEqual(stores.map((_, i) => `from opener ${i}`));
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
      const versions = await sql<{ version: number }>(url, 'SELECT version FROM warden_schema_migrations ORDER BY version');
      expect(versions).toHaveLength(POSTGRES_SCHEMA_VERSION);
    });

    it('opens a migrated database as a user without DDL rights, and says what is missing on a new one', async () => {
      const url = await server().createDatabase('grants');
      const role = `warden_app_${Math.random().toString(36).slice(2, 8)}`;
      await sql(url, `CREATE ROLE ${role} LOGIN`);
      await (await createPostgresStore(url)).close();
      await sql(url, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
      const asApp = url.replace(`//${server().user}@`, `//${role}@`);
      const store = await createPostgresStore(asApp);
      try {
        await store.appendMessages('run-1', [{ seq: 0, message: 'written by the app role' }]);
        expect(await store.readMessages('run-1', 1)).toEqual(['written by the app role']);
      } finally {
        await store.close();
      }

      const fresh = (await server().createDatabase('grants_new')).replace(`//${server().user}@`, `//${role}@`);
      await expect(createPostgresStore(fresh)).rejects.toThrow(`cannot open run store ${fresh}: permission denied for schema public`);
    });

    it('refuses a database whose schema is newer than this code, and says so', async () => {
      const url = await server().createDatabase('newer');
      await (await createPostgresStore(url)).close();
      await sql(url, `INSERT INTO warden_schema_migrations (version, description) VALUES (99, 'from the future')`);
      const error: unknown = await createPostgresStore(url).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toBe(`cannot open run store ${url}: schema version 99 is newer than this Warden understands (${POSTGRES_SCHEMA_VERSION})`);
    });

    it('keeps two schemas of one database apart, and refuses a schema name that is not a plain identifier', async () => {
      const url = await server().createDatabase('schemas');
      const blue = await createPostgresStore(url, { schema: 'warden_blue' });
      const green = await createPostgresStore(url, { schema: 'warden_green' });
      try {
        await blue.appendMessages('run-1', [{ seq: 0, message: 'blue' }]);
        await green.appendMessages('run-1', [{ seq: 0, message: 'green' }]);
        expect(await blue.readMessages('run-1', 1)).toEqual(['blue']);
        expect(await green.readMessages('run-1', 1)).toEqual(['green']);
      } finally {
        await blue.close();
        await green.close();
      }
      const tablesOf = async (schema: string) =>
        (await sql<{ table_name: string }>(url, `SELECT table_name FROM information_schema.tables WHERE table_schema = '${schema}' ORDER BY table_name`)).map((t) => t.table_name);
      // Each schema holds the whole store, and nothing of the other's.
      expect(await tablesOf('warden_blue')).toEqual(['applied_policies', 'audit_events', 'kill_switches', 'messages', 'quota_reservations', 'rate_limits', 'rate_slots', 'run_claims', 'secrets', 'warden_schema_migrations']);
      expect(await tablesOf('warden_green')).toEqual(await tablesOf('warden_blue'));
      await expect(createPostgresStore(url, { schema: 'x"; DROP TABLE messages; --' })).rejects.toThrow(/schema "x"; DROP TABLE messages; --" must match/);
      await expect(createPostgresStore(url, { poolSize: 0 })).rejects.toThrow('poolSize must be a positive integer, got 0');
    });
  });

  describe('several stores on one database (workers on different hosts)', () => {
    it('two pools appending the same rows at once end with one copy of each', async () => {
      const url = await server().createDatabase('concurrent');
      const [a, b] = await Promise.all([createPostgresStore(url, { poolSize: 4 }), createPostgresStore(url, { poolSize: 4 })]);
      try {
        const rows = Array.from({ length: 200 }, (_, seq) => ({ seq, message: { role: 'user', content: `m${seq}` } }));
        const batches = Array.from({ length: 20 }, (_, i) => rows.slice(i * 10, i * 10 + 15));
        const events = auditTrail(50);
        // Both stores write every batch, one front to back and one back to front, all at once.
        await Promise.all([
          ...batches.map((batch) => a.appendMessages('run-c', batch)),
          ...[...batches].reverse().map((batch) => b.appendMessages('run-c', [...batch].reverse())),
          a.appendAudit('run-c', events),
          b.appendAudit('run-c', [...events].reverse()),
          ...events.map((e) => b.appendAudit('run-c', [e])),
        ]);
        expect(await a.readMessages('run-c', 200)).toEqual(rows.map((r) => r.message));
        expect(await b.readAudit('run-c')).toEqual(events);
        const counts = await sql<{ messages: string; audit: string }>(url, `SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM audit_events) AS audit`);
        expect(counts[0]).toEqual({ messages: '200', audit: '50' });

        // Racing replace-mode writes of one seq leave exactly one row, one of the two answers.
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).appendMessages('run-r', [{ seq: 0, message: `attempt ${i}` }], 'replace')),
        );
        const [answer] = (await a.readMessages('run-r', 1)) as string[];
        expect(answer).toMatch(/^attempt \d+$/);
        expect(await sql(url, `SELECT seq FROM messages WHERE run_id = 'run-r'`)).toHaveLength(1);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('serves many concurrent calls from a pool of one connection', async () => {
      const url = await server().createDatabase('pool');
      const store = await createPostgresStore(url, { poolSize: 1 });
      try {
        await Promise.all(Array.from({ length: 30 }, (_, seq) => store.appendMessages('run-p', [{ seq, message: seq }])));
        expect(await store.readMessages('run-p', 30)).toEqual(Array.from({ length: 30 }, (_, i) => i));
        const connections = await sql<{ n: string }>(url, `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'warden' AND datname = current_database()`);
        expect(Number(connections[0]?.n)).toBe(1);
      } finally {
        await store.close();
      }
    });

    it('refuses calls after close with a StoreError naming the store', async () => {
      const url = await server().createDatabase('closed');
      const store = await createPostgresStore(url);
      await store.close();
      await store.close();
      await expect(store.readAudit('run-1')).rejects.toThrow(`run store ${url} is closed: cannot read audit events of run run-1`);
    });
  });

  describe('passwords stay out of messages', () => {
    it('redacts the password of a URL, and a password parameter', () => {
      expect(redactStoreLocation('postgres://warden:s3cret@db.internal:5432/warden')).toBe('postgres://warden:***@db.internal:5432/warden');
      expect(redactStoreLocation('postgresql://warden@db/warden?sslmode=require&password=s3cret')).toBe('postgresql://warden@db/warden?sslmode=require&password=***');
      expect(redactStoreLocation('postgres://warden:s3cret@[bad')).toBe('postgres://(unparsable URL)');
      expect(redactStoreLocation('/var/lib/warden/warden.db')).toBe('/var/lib/warden/warden.db');
    });

    it('names the server but not the password when a database is missing or the server is down', async () => {
      const missing: unknown = await createPostgresStore(server().url('no_such_database', 's3cret-pw')).catch((err: unknown) => err);
      expect(missing).toBeInstanceOf(StoreError);
      expect((missing as Error).message).toBe(`cannot open run store postgres://warden_test:***@127.0.0.1:${server().port}/no_such_database: database "no_such_database" does not exist`);

      // A port nothing listens on: one the system just handed out and this test closed again.
      const closedPort = await new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = probe.address() as net.AddressInfo;
          probe.close(() => resolve(port));
        });
      });
      const down: unknown = await createPostgresStore(`postgres://warden:s3cret-pw@127.0.0.1:${closedPort}/warden`).catch((err: unknown) => err);
      expect(down).toBeInstanceOf(StoreError);
      expect((down as Error).message).toMatch(new RegExp(`^cannot open run store postgres://warden:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}/warden: .*ECONNREFUSED`));
      expect(String((down as Error).stack)).not.toContain('s3cret-pw');
    });
  });

  describe('openRunStore', () => {
    it('opens PostgreSQL for postgres:// and postgresql:// URLs and SQLite for a path', async () => {
      const url = await server().createDatabase('open');
      const viaPostgres = await openRunStore(url);
      await viaPostgres.appendMessages('run-1', [{ seq: 0, message: 'in postgres' }]);
      const viaPostgresql = await openRunStore(url.replace(/^postgres:/, 'postgresql:'), { poolSize: 1 });
      expect(await viaPostgresql.readMessages('run-1', 1)).toEqual(['in postgres']);
      await Promise.all([viaPostgres.close(), viaPostgresql.close()]);

      const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-open-'));
      let sqlite: RunStore | undefined;
      try {
        sqlite = await openRunStore(path.join(dir, 'warden.db'));
        await expect(sqlite.readMessages('run-1', 1)).rejects.toThrow('run run-1: message 0 is missing');
        expect(existsSync(path.join(dir, 'warden.db'))).toBe(true);
      } finally {
        await sqlite?.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('the CLI with WARDEN_STORE', () => {
    it('reads applied policies from PostgreSQL, and prints a redacted URL when it cannot', async () => {
      const url = await server().createDatabase('cli');
      const store = await createPostgresStore(url);
      await store.setAppliedPolicy('notes-agent', { policy: { agent: 'notes-agent' }, version: 'pv_from_postgres', source: 'test' });
      await store.close();
      const home = mkdtempSync(path.join(os.tmpdir(), 'warden-cli-pg-'));
      try {
        const env = { ...process.env, WARDEN_HOME: home, WARDEN_STORE: url };
        const listed = await runCli(['policy', 'list', '--json', '--policies', path.join(repoRoot, 'policies')], env);
        expect(listed.stderr).toBe('');
        expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ agent: 'notes-agent', version: 'pv_from_postgres', source: 'test' })]);
        // No SQLite file appeared: the store was PostgreSQL.
        expect(existsSync(path.join(home, 'warden.db'))).toBe(false);

        const bad = await runCli(['policy', 'list'], { ...env, WARDEN_STORE: server().url('no_such_database', 'hunter2-pw') });
        expect(bad.code).toBe(1);
        expect(bad.stderr).toContain(`cannot open run store postgres://warden_test:***@127.0.0.1:${server().port}/no_such_database: database "no_such_database" does not exist`);
        expect(bad.stdout + bad.stderr).not.toContain('hunter2-pw');
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });
  });
});
