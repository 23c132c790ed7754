import type { WardenClient } from '../client';
import type { TemporalSettings } from '../config';
import { openRunStore, redactStoreLocation, type RunStore } from '../store';
import { connectClient, settingsFromEnv, storeLocation } from './context';
import { describeError } from './cli-errors';
import { out } from './format';

/**
 * Starts a long-running server (inbox, Slack app) with a client and the run store, and closes all
 * three on Ctrl-C. If the server fails to start, the client and store are closed before the error goes on.
 */
export async function serveWithClientAndStore<S extends { close(): Promise<void> }>(
  stopping: string,
  start: (deps: { client: WardenClient; store: RunStore; settings: TemporalSettings; storePath: string }) => Promise<S>,
): Promise<{ server: S; settings: TemporalSettings; storePath: string }> {
  const settings = settingsFromEnv();
  const client = await connectClient(settings);
  const storePath = storeLocation();
  const store = await openRunStore(storePath).catch(async (err: unknown) => {
    await client.close().catch(() => undefined);
    throw err;
  });
  const closeDeps = async () => {
    await client.close().catch(() => undefined);
    await store.close();
  };
  let server: S;
  try {
    server = await start({ client, store, settings, storePath: redactStoreLocation(storePath) });
  } catch (err) {
    await closeDeps();
    throw err;
  }
  onShutdownSignal(async () => {
    await server.close();
    await closeDeps();
  }, stopping);
  return { server, settings, storePath: redactStoreLocation(storePath) };
}

/**
 * Calls `cleanup` on the first Ctrl-C or SIGTERM and exits when it is done (with `exitCode`, 0
 * unless given); a second Ctrl-C exits at once. Returns a function that removes the handlers.
 */
export function onShutdownSignal(cleanup: () => Promise<void>, what = 'shutting down', exitCode = 0): () => void {
  let stopping = false;
  const handler = () => {
    if (stopping) {
      process.stderr.write('warden: stopping now\n');
      process.exit(130);
    }
    stopping = true;
    out(`\n${what}…`);
    cleanup().then(
      () => {
        out('stopped');
        process.exit(exitCode);
      },
      (err: unknown) => {
        process.stderr.write(`error: ${describeError(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
  };
}
