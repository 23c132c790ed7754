import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/client';
import { errorMarker, WardenError } from './errors';

/** The task queue Warden workers poll unless told otherwise (`taskQueue`; the CLI reads `WARDEN_TASK_QUEUE`). */
export const TASK_QUEUE = 'warden';

/** The workflow type of an agent run (the name of the exported workflow function). */
export const AGENT_RUN_WORKFLOW = 'agentRun';

/** The id of a run: `warden/<agent>/<key>`. */
export function runIdFor(agent: string, key: string): string {
  return `warden/${agent}/${key}`;
}

/** How to reach Temporal: address, namespace, TLS or API key. */
export interface TemporalSettings {
  address: string;
  namespace: string;
  /** `true` for TLS with the system's roots (implied by an API key), `false` or absent for none. */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC metadata sent with every call (`TEMPORAL_GRPC_META_*`, or a profile's `grpc_meta`). */
  metadata?: Record<string, string>;
}

/** What the library connects to when given no settings: a local dev server, as `warden dev` starts it. */
export const LOCAL_TEMPORAL: Readonly<TemporalSettings> = Object.freeze({ address: '127.0.0.1:7233', namespace: 'default' });

/** The environment's Temporal settings contradict each other; the message names the variables. */
export class TemporalSettingsError extends WardenError {
  static override readonly marker = errorMarker('TemporalSettingsError');
  override name = 'TemporalSettingsError';
}

/** The environment, as `temporalSettingsFromEnv` reads it; pass `process.env` or a literal. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Temporal settings from an environment, the way Temporal's own clients read them
 * (`@temporalio/envconfig`): the profile `TEMPORAL_PROFILE` (default `default`) of the
 * `temporal.toml` config file (`TEMPORAL_CONFIG_FILE`, else the user's config directory) when
 * there is one, overridden by `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
 * `TEMPORAL_TLS*` and `TEMPORAL_GRPC_META_*`. Warden's earlier names `TEMPORAL_TLS_CERT`,
 * `TEMPORAL_TLS_KEY` and `TEMPORAL_TLS_CA` still work (they stand for the
 * `TEMPORAL_TLS_CLIENT_CERT_PATH`, `…_CLIENT_KEY_PATH` and `…_SERVER_CA_CERT_PATH` of envconfig).
 * Defaults: 127.0.0.1:7233, namespace `default`. The CLI calls it with `process.env`; library
 * functions never read the environment themselves.
 */
export function temporalSettingsFromEnv(env: Environment): TemporalSettings {
  if (Boolean(env.TEMPORAL_TLS_CERT) !== Boolean(env.TEMPORAL_TLS_KEY)) throw new TemporalSettingsError('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both or neither');
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (name.startsWith('TEMPORAL_') && value !== undefined && value !== '') vars[name] = value;
  const aliases = { TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH', TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH', TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH' } as const;
  for (const [old, name] of Object.entries(aliases)) {
    const value = vars[old];
    if (value !== undefined) vars[name] ??= value;
  }
  // The config file's default location is found from these; envconfig reads nothing but `overrideEnvVars`.
  for (const name of ['HOME', 'XDG_CONFIG_HOME', 'APPDATA']) {
    const value = env[name];
    if (value) vars[name] = value;
  }
  const { connectionOptions, namespace } = loadClientConnectConfig({ overrideEnvVars: vars });
  const settings: TemporalSettings = { address: connectionOptions.address ?? LOCAL_TEMPORAL.address, namespace: namespace ?? LOCAL_TEMPORAL.namespace };
  if (connectionOptions.tls !== undefined && connectionOptions.tls !== null) settings.tls = connectionOptions.tls;
  if (typeof connectionOptions.apiKey === 'string') settings.apiKey = connectionOptions.apiKey;
  if (connectionOptions.metadata && Object.keys(connectionOptions.metadata).length > 0) settings.metadata = connectionOptions.metadata as Record<string, string>;
  return settings;
}
