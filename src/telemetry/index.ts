// Warden's OpenTelemetry: traces (GenAI conventions) and metrics over OTLP/HTTP.
export { createTelemetry, telemetryFromEnv, TelemetryError } from './setup';
export type { TelemetryOptions, WardenTelemetry } from './setup';
export { WORKFLOW_TELEMETRY_MODULES, bundleHasTelemetry, telemetryWorkerOptions } from './worker-telemetry';
export { traceContextMixin } from './logs';
export { traceActivities } from './spans';
export { WardenMetrics } from './metrics';
export { GEN_AI, WARDEN } from './conventions';
export type { CallGovernance, GovernanceFact } from './conventions';
