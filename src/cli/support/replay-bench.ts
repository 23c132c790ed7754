import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { AgentRegistry, ModelSpec } from '../../agents';
import type { TemporalSettings } from '../../config';
import { startDevServer, type DevServer } from '../../dev-server';
import { EvalCaseError, type GoldenCase } from '../../eval/case-schema';
import { recordCase } from '../../eval/record';
import { ReplayBench, type CaseReport } from '../../eval/run';
import { openRunStore, type RunStore } from '../../store';
import { logLevelFromEnv, payloadCodecFromEnv, withStore } from '../context';
import { CliError } from '../cli-errors';
import { printable, usd } from '../format';
import { devServerSetupNote, installRuntime } from '../local-stack';

/** Where a replay runs: the Temporal server it uses, and what to stop afterwards. */
export interface BenchSetup {
  bench: ReplayBench;
  close(): Promise<void>;
}

/**
 * Starts a replay bench for the given agents. `settings` null starts a headless, in-memory dev
 * server of its own; a store location null keeps the replayed runs in a temporary SQLite file.
 */
export async function startBench(registry: AgentRegistry, settings: TemporalSettings | null, storeLocation: string | null, workflowBundle?: string, model?: ModelSpec): Promise<BenchSetup> {
  installRuntime();
  if (workflowBundle !== undefined && !existsSync(workflowBundle)) throw new CliError(`workflow bundle ${workflowBundle} does not exist`);
  const temp = storeLocation === null ? mkdtempSync(path.join(os.tmpdir(), 'warden-eval-')) : null;
  let server: DevServer | null = null;
  let store: RunStore | null = null;
  try {
    if (!settings) server = await startDevServer({ headless: true, log: () => {}, setupLog: devServerSetupNote });
    const resolved = settings ?? { address: server?.address ?? '', namespace: server?.namespace ?? 'default' };
    store = await openRunStore(temp ? path.join(temp, 'runs.db') : (storeLocation ?? ''));
    const payloadCodec = payloadCodecFromEnv();
    const bench = await ReplayBench.start({
      registry,
      settings: resolved,
      store,
      ...(payloadCodec ? { payloadCodec } : {}),
      ...(workflowBundle ? { workflowBundle: { codePath: path.resolve(workflowBundle) } } : {}),
      logger: pino({ name: 'warden-eval', level: logLevelFromEnv('warn') }),
      // A live evaluation's model, with the keys of this environment.
      ...(model ? { model, modelEnv: process.env } : {}),
    });
    const openStore = store;
    const openServer = server;
    return {
      bench,
      close: async () => {
        await bench.close();
        await openStore.close();
        await openServer?.stop();
        if (temp) rmSync(temp, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await store?.close();
    await server?.stop();
    if (temp) rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}

/** A finished run as a golden case, read from the run store; a run that cannot be one is a CLI error naming why. */
export function recordedCase(runId: string): Promise<GoldenCase> {
  return withStore(async (store) => {
    try {
      return await recordCase(store, runId, await store.readAudit(runId));
    } catch (err) {
      if (EvalCaseError.isInstance(err)) throw new CliError(err.message);
      throw err;
    }
  });
}

/** What a report says, as lines for the terminal. */
export function reportLines(r: CaseReport): string[] {
  const head = `${r.passed ? 'PASS' : 'FAIL'}  ${printable(r.name)} (${r.agent}): ${r.outcome.replayed.status}, ${r.budget.steps} step(s), ${r.budget.toolCalls} tool call(s), ${usd(r.budget.costUsd)}${r.budget.maxCostUsd !== null ? ` of ${usd(r.budget.maxCostUsd)}` : ''}; ${r.decisions.replayed.length} decision(s)`;
  return [head, `      replay ${printable(r.runId)} of ${printable(r.recordedRunId)}`, ...r.failures.map((f) => `      ✗ ${printable(f)}`), ...r.changes.map((c) => `      ~ ${printable(c)}`)];
}
