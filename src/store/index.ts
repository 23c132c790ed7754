import { createPostgresStore, isPostgresUrl, type PostgresStoreOptions } from './postgres-store';
import { createSqliteStore } from './sqlite-store';
import type { RunStore } from './run-store';

export type { MessageRow, RunStore } from './run-store';
export { createSqliteStore, defaultStorePath, StoreError } from './sqlite-store';
export { createPostgresStore, isPostgresUrl, redactStoreLocation, POSTGRES_SCHEMA_VERSION } from './postgres-store';
export type { PostgresStoreOptions } from './postgres-store';

/**
 * Opens the run store at `location`: PostgreSQL for a `postgres://` or `postgresql://` URL
 * (`options` apply to it), else the SQLite file at that path. Reads no environment variable; the
 * CLI passes `WARDEN_STORE`, else `defaultStorePath()`. Print the location with `redactStoreLocation`.
 */
export async function openRunStore(location: string, options: PostgresStoreOptions = {}): Promise<RunStore> {
  return isPostgresUrl(location) ? createPostgresStore(location, options) : createSqliteStore(location);
}
