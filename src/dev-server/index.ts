export { startDevServer } from './start-dev-server';
export type { DevServer, DevServerOptions } from './start-dev-server';
export { resolveTemporalBinary, cachedTemporalBinaryPath, wardenCacheDir, TEMPORAL_CLI_VERSION, TEMPORAL_CLI_MODULE } from './resolve-binary';
export type { ResolveTemporalBinaryOptions } from './resolve-binary';
export { DevServerError, TemporalBinaryNotFoundError } from './dev-server-errors';
export { freePorts } from './free-port';
