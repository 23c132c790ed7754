import { createPostgresStore, isPostgresUrl, type PostgresStoreOptions } from './postgres-store';
import type { RunStore } from './run-store';
import { createSqliteStore } from './sqlite-store';

/**
 * Opens the run store at `location`: PostgreSQL for a `postgres://` or `postgresql://` URL
 * (`options` apply to it), else the SQLite file at that path. Reads no environment variable; the
 * CLI passes `WARDEN_STORE`, else `defaultStorePath()`. Print the location with `redactStoreLocation`.
 */
export async function openRunStore(location: string, options: PostgresStoreOptions = {}): Promise<RunStore> {
  return isPostgresUrl(location) ? createPostgresStore(location, options) : createSqliteStore(location);
}
