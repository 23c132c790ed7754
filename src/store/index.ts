// The run store: the conversation, tool results and audit events, outside Temporal's history.
export type { MessageRow, RunStore } from './run-store';
export { createSqliteStore, defaultStorePath, StoreError } from './sqlite-store';
export { createPostgresStore, isPostgresUrl, redactStoreLocation, POSTGRES_SCHEMA_VERSION } from './postgres-store';
export type { PostgresStoreOptions } from './postgres-store';
export { openRunStore } from './open-run-store';
export { reservationId } from './quota-ledger';
export type { QuotaLedger, QuotaBooking, QuotaReserveRequest, QuotaReserveResult, QuotaReservation, QuotaReservationState, QuotaSettlement, QuotaUsage, QuotaUsageFilter, RateSlotRequest } from './quota-ledger';
