/**
 * `npm run test:jest` (the tests of `npm test`): runs jest's `unit` project, then its `integration`
 * project, each as its own jest, and writes both results as one `jest-results.json` for `.ci/run`.
 *
 * Two runs rather than one: in a single run jest starts every project's global setup (the dev
 * server, the workflow bundle) before the first test, so a broken unit test would wait for it, and
 * a server that fails to start would lose the unit results too. Both projects always run; the exit
 * code is non-zero if either failed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PROJECTS = ['unit', 'integration'] as const;
const RESULTS_FILE = 'jest-results.json';
const jestBin = require.resolve('jest/bin/jest');

/** Jest's `--json` result, as far as this script reads it. */
interface JestResults {
  success: boolean;
  numRuntimeErrorTestSuites: number;
  testResults: Record<string, unknown>[];
  [field: string]: unknown;
}

let interrupted = false;

/** Runs jest on one project; forwards a stop signal so jest's global teardown still stops the dev server. */
function runJest(project: string, outputFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [jestBin, '--selectProjects', project, '--json', `--outputFile=${outputFile}`], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => {
      interrupted = true;
      child.kill(signal);
    };
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('error', reject);
    child.on('exit', (code) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(code ?? 1);
    });
  });
}

/**
 * Jest's counts add up, its flags combine (`success` only if both succeeded) and its lists join, so
 * the merged file reads like one run of both projects.
 */
function merge(a: unknown, b: unknown, field = ''): unknown {
  if (typeof a === 'number' && typeof b === 'number') return field === 'startTime' ? Math.min(a, b) : a + b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return field === 'success' ? a && b : a || b;
  if (Array.isArray(a) && Array.isArray(b)) return [...(a as unknown[]), ...(b as unknown[])];
  if (isRecord(a) && isRecord(b)) {
    const merged: Record<string, unknown> = { ...b, ...a };
    for (const key of Object.keys(a)) if (key in b) merged[key] = merge(a[key], b[key], key);
    return merged;
  }
  return a;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A project whose jest wrote no result (its global setup failed, or jest crashed) counts as one suite that could not run. */
function noResults(): JestResults {
  return { success: false, numRuntimeErrorTestSuites: 1, testResults: [] };
}

async function main(): Promise<number> {
  rmSync(RESULTS_FILE, { force: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-jest-'));
  let status = 0;
  let results: JestResults | undefined;
  try {
    for (const project of PROJECTS) {
      if (interrupted) break;
      const file = path.join(dir, `${project}.json`);
      const code = await runJest(project, file);
      if (code !== 0) status = code;
      let projectResults = noResults();
      if (existsSync(file)) projectResults = JSON.parse(readFileSync(file, 'utf8')) as JestResults;
      else console.error(`[test] the ${project} tests wrote no results (jest exited with ${code}); counted as a suite that failed to run`);
      // .ci/run reports time per project from this mark.
      for (const testResult of projectResults.testResults) testResult.project = project;
      results = results ? (merge(results, projectResults) as JestResults) : projectResults;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (results) writeFileSync(RESULTS_FILE, JSON.stringify(results));
  return interrupted ? 130 : status;
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
