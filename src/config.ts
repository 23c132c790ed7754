import { readFileSync } from 'node:fs';

/** The task queue every Warden worker polls. Workers scale out horizontally on it. */
export const TASK_QUEUE = process.env.WARDEN_TASK_QUEUE ?? 'warden';

/** The workflow type of an agent run (the name of the exported workflow function). */
export const AGENT_RUN_WORKFLOW = 'agentRun';

/** The id of a run: `warden/<agent>/<key>`. */
export function runIdFor(agent: string, key: string): string {
  return `warden/${agent}/${key}`;
}

/** How to reach Temporal, from the environment: address, namespace, TLS or API key. */
export interface TemporalSettings {
  address: string;
  namespace: string;
  tls?: { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer } | true;
  apiKey?: string;
}

/**
 * Reads `TEMPORAL_ADDRESS` (default 127.0.0.1:7233), `TEMPORAL_NAMESPACE` (default `default`),
 * `TEMPORAL_TLS_CERT` + `TEMPORAL_TLS_KEY` (+ `TEMPORAL_TLS_CA`) for mTLS, and `TEMPORAL_API_KEY`
 * for Temporal Cloud API keys. The same variables the `temporal` CLI reads.
 */
export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const settings: TemporalSettings = { address: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233', namespace: env.TEMPORAL_NAMESPACE ?? 'default' };
  if (env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY) {
    if (!env.TEMPORAL_TLS_CERT || !env.TEMPORAL_TLS_KEY) throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together');
    settings.tls = { clientCertPair: { crt: readFileSync(env.TEMPORAL_TLS_CERT), key: readFileSync(env.TEMPORAL_TLS_KEY) } };
    if (env.TEMPORAL_TLS_CA) settings.tls.serverRootCACertificate = readFileSync(env.TEMPORAL_TLS_CA);
  }
  if (env.TEMPORAL_API_KEY) {
    settings.apiKey = env.TEMPORAL_API_KEY;
    settings.tls ??= true;
  }
  return settings;
}
