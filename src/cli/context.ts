/* eslint-disable @typescript-eslint/no-require-imports -- see below */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as TemporalClient from '@temporalio/client';
import type * as ClientModule from '../client';
import type { WardenClient } from '../client';
import type * as CodecKeysModule from '../codec/payload-keys';
import type * as EncryptionCodecModule from '../codec/encryption-codec';
import type { EncryptionCodec } from '../codec/encryption-codec';
import type * as ConfigModule from '../config';
import type { TemporalSettings } from '../config';
import type * as ApprovalKeysModule from '../approvals/signing-keys';
import type { Keyring } from '../governance/signing/keyring';
import type * as StoreModule from '../store';
import type { RunStore } from '../store';
import type * as TelemetrySetup from '../telemetry/setup';
import type { WardenTelemetry } from '../telemetry/setup';
import { CliError, describeError } from './cli-errors';

// Every command loads this module, and most need only a few of its helpers: the Temporal client,
// the run store (better-sqlite3, pg), the keyring and the payload codec are required by the
// helper that uses them, so `warden keys` never loads Temporal and `warden status` never loads a
// database driver it does not open.

/** `$WARDEN_HOME`, else `.warden` under the working directory: keys, run store, dev server data. */
export function wardenHome(): string {
  return process.env.WARDEN_HOME ?? '.warden';
}

/** The directory that holds Warden's package.json: defaults such as `examples/` resolve from it. */
export function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** Settings from the environment; a broken TLS setting is a user error, not a crash. */
export function settingsFromEnv(): TemporalSettings {
  try {
    return (require('../config') as typeof ConfigModule).temporalSettingsFromEnv(process.env);
  } catch (err) {
    throw new CliError(`Temporal settings: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The task queue of this environment's workers: `WARDEN_TASK_QUEUE`, else `warden`. */
export function taskQueueFromEnv(): string {
  return process.env.WARDEN_TASK_QUEUE || (require('../config') as typeof ConfigModule).TASK_QUEUE;
}

/** The keyring of the workers this CLI starts: the `WARDEN_TRUSTED_KEYS` file, followed as it changes; none when unset. */
export function trustedKeysFromEnv(): () => Keyring {
  return (require('../approvals/signing-keys') as typeof ApprovalKeysModule).keyringFromEnv(process.env);
}

/** What workers post Slack approval requests with: `SLACK_BOT_TOKEN` (and `SLACK_API_URL`, for a stand-in), else nothing. */
export function slackFromEnv(): { botToken: string; slackApiUrl?: string } | null {
  const botToken = process.env.SLACK_BOT_TOKEN;
  if (!botToken) return null;
  return process.env.SLACK_API_URL ? { botToken, slackApiUrl: process.env.SLACK_API_URL } : { botToken };
}

/** The pino level of a process the CLI runs: `WARDEN_LOG_LEVEL` (lower-cased), else `fallback`. */
export function logLevelFromEnv(fallback: string): string {
  return process.env.WARDEN_LOG_LEVEL?.toLowerCase() || fallback;
}

/**
 * The person at the terminal as this machine names them: `$USER`, `$USERNAME`, else the account
 * the process runs as (a shell or container that sets neither variable); undefined when that
 * account has no name either (a container user without a passwd entry).
 */
export function loginName(): string | undefined {
  const fromEnv = process.env.USER || process.env.USERNAME;
  if (fromEnv) return fromEnv;
  try {
    return os.userInfo().username || undefined;
  } catch {
    return undefined;
  }
}

/** Who a command acts as when `--by`/`--requester` is not given: `loginName()`, else `cli`. */
export function currentUser(): string {
  return loginName() ?? 'cli';
}

/**
 * The payload key file of this environment: `WARDEN_PAYLOAD_KEYS`, else the one `warden dev`
 * keeps under the Warden home if it exists, else none (payloads travel in clear). Workers and
 * clients resolve it the same way, so what one encrypts the other can read.
 */
export function payloadKeysFile(): { file: string; from: 'WARDEN_PAYLOAD_KEYS' | 'dev' } | undefined {
  if (process.env.WARDEN_PAYLOAD_KEYS) return { file: process.env.WARDEN_PAYLOAD_KEYS, from: 'WARDEN_PAYLOAD_KEYS' };
  const dev = (require('../codec/payload-keys') as typeof CodecKeysModule).devPayloadKeysFile(wardenHome());
  return existsSync(dev) ? { file: dev, from: 'dev' } : undefined;
}

/** The payload codec for `payloadKeysFile()`, or undefined when there is no key file; a bad file is a one-line error. */
export function payloadCodecFromEnv(): EncryptionCodec | undefined {
  const found = payloadKeysFile();
  if (!found) return undefined;
  try {
    const { EncryptionCodec } = require('../codec/encryption-codec') as typeof EncryptionCodecModule;
    return new EncryptionCodec((require('../codec/payload-keys') as typeof CodecKeysModule).loadPayloadKeys(found.file));
  } catch (err) {
    const prefix = found.from === 'WARDEN_PAYLOAD_KEYS' ? 'WARDEN_PAYLOAD_KEYS: ' : '';
    throw new CliError(`${prefix}${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * `WARDEN_ACCEPT_PLAINTEXT_PAYLOADS=1`: a worker with payload keys takes unencrypted payloads too
 * (a migration from payloads in clear; loud in the log). Unset or `0`: it refuses them.
 */
export function acceptPlaintextFromEnv(): boolean {
  const value = process.env.WARDEN_ACCEPT_PLAINTEXT_PAYLOADS ?? '';
  if (value === '' || value === '0') return false;
  if (value === '1') return true;
  throw new CliError(`WARDEN_ACCEPT_PLAINTEXT_PAYLOADS is "${value}": set it to 1 to take unencrypted payloads (migration only), or unset it`);
}

/** Connects a client for a command that keeps it open (a server); the error names the address. The caller closes it. */
export async function connectClient(settings: TemporalSettings, telemetry?: WardenTelemetry): Promise<WardenClient> {
  const payloadCodec = payloadCodecFromEnv();
  try {
    const { WardenClient } = require('../client') as typeof ClientModule;
    return await WardenClient.connect(settings, taskQueueFromEnv(), { payloadCodec, ...(telemetry ? { telemetry } : {}) });
  } catch (err) {
    throw new CliError(describeError(err, { address: settings.address }));
  }
}

/**
 * Runs `fn` with a client connected from the environment and closes it after. The connection
 * error names the address, since that is what a person gets wrong.
 */
export async function withClient<T>(fn: (client: WardenClient) => Promise<T>): Promise<T> {
  const telemetry = cliTelemetryFromEnv();
  try {
    const client = await connectClient(settingsFromEnv(), telemetry);
    try {
      return await fn(client);
    } finally {
      await client.close();
    }
  } finally {
    // The command's spans (StartWorkflow, StartWorkflowUpdate, HandleQuery's caller) leave before it exits.
    await telemetry?.shutdown().catch(() => undefined);
  }
}

/**
 * A command's own traces, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (service `warden-cli` unless
 * `OTEL_SERVICE_NAME` says otherwise): a run started or a decision sent with `warden run` or
 * `warden approve` starts the trace the worker's spans join. None otherwise.
 */
function cliTelemetryFromEnv(): WardenTelemetry | undefined {
  if (!process.env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()) return undefined;
  try {
    // The OpenTelemetry SDK is loaded only when it is asked for.
    return (require('../telemetry/setup') as typeof TelemetrySetup).telemetryFromEnv(process.env, { serviceName: 'warden-cli' });
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Where the run store is: `$WARDEN_STORE` (a `postgres://` URL, or a file), else `defaultStorePath()`.
 * Print it with `redactStoreLocation`: a URL may carry a password.
 */
export function storeLocation(): string {
  return process.env.WARDEN_STORE || (require('../store') as typeof StoreModule).defaultStorePath();
}

/** Runs `fn` with the run store at `storeLocation()` (the one the local worker writes) and closes it after. */
export async function withStore<T>(fn: (store: RunStore) => Promise<T>): Promise<T> {
  const store = await (require('../store') as typeof StoreModule).openRunStore(storeLocation());
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Both, for commands that read the audit trail (store plus the run's live tail). */
export function withClientAndStore<T>(fn: (client: WardenClient, store: RunStore) => Promise<T>): Promise<T> {
  return withClient((client) => withStore((store) => fn(client, store)));
}

/** How long a command waits for a run to answer a query. A run whose worker is down never answers. */
export const QUERY_MS = 10_000;

function isDeadline(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | null;
  // 4 is gRPC DEADLINE_EXCEEDED.
  return e?.code === 4 || e?.cause?.code === 4 || /deadline exceeded/i.test(String(e?.message));
}

/**
 * Runs a query against a run under a deadline. Queries are answered by a worker, so a run whose
 * worker is down would otherwise hang the command for the server's own timeout; this names the
 * likely cause instead.
 */
export async function askRun<T>(client: WardenClient, runId: string, fn: () => Promise<T>, ms = QUERY_MS): Promise<T> {
  try {
    return await client.client.connection.withDeadline(Date.now() + ms, fn);
  } catch (err) {
    const { WorkflowNotFoundError } = require('@temporalio/client') as typeof TemporalClient;
    if (err instanceof WorkflowNotFoundError || !isDeadline(err)) throw err;
    throw new CliError(`run ${runId} did not answer within ${ms / 1000}s: is a worker running on its task queue (${taskQueueFromEnv()})? Start one with 'warden worker' or 'warden dev'`);
  }
}
