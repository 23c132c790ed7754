/**
 * `warden/worker`: run agents — the worker that executes agent runs and their tools, the agent
 * registry, the run stores, payload encryption and its codec endpoint, the keyring the worker
 * trusts, and telemetry.
 */
export { createWardenWorker, connectWorker, bundleWardenWorkflows, DEFAULT_MAX_CACHED_RUNS } from '../worker/index';
export type { WardenWorkerOptions } from '../worker/index';
export { loadAgents, loadPolicies, AgentRegistry } from '../agents/index';
export { createSqliteStore, defaultStorePath, createPostgresStore, openRunStore, redactStoreLocation } from '../store/index';
export type { RunStore, MessageRow, PostgresStoreOptions } from '../store/index';
export { EncryptionCodec, loadPayloadKeys, createPayloadKeyFile, createCodecHandler } from '../codec/index';
export type { PayloadKeys, CodecEndpointOptions } from '../codec/index';
export { parseKeyring } from '../governance/signing/keyring';
export { loadKeyring, watchKeyring } from '../approvals/signing-keys';
export { ModelConfigError } from '../activities/models';
export type { ModelEnv, RunLimits } from '../activities/index';
export { createTelemetry, telemetryFromEnv, TelemetryError, traceContextMixin, WORKFLOW_TELEMETRY_MODULES } from '../telemetry/index';
export type { TelemetryOptions, WardenTelemetry } from '../telemetry/index';
export { TASK_QUEUE, LOCAL_TEMPORAL, temporalSettingsFromEnv } from '../config';
export type { TemporalSettings, Environment } from '../config';
export * from '../index';
