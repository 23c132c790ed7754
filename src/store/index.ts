export type { MessageRow, RunStore } from './types';
export { createSqliteStore, defaultStorePath, StoreError } from './sqlite-store';
