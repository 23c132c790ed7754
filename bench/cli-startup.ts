/**
 * `npm run bench:cli`: how long the installed CLI (the compiled `dist/`, as `bin/warden.js` runs it
 * from an installed package) takes to answer, as the median wall time of RUNS runs of each command
 * and its ratio to `node -e 0` (Node's own start) measured alongside: shared machines are noisy, so
 * the ratio says more than the milliseconds.
 *
 * Commands: `warden --help` (answered from the command table, no command module loaded),
 * `warden keys --help` (one module), `warden status <run>` against a run waiting for approval on a
 * dev environment this script starts (`warden dev --headless` in a temporary Warden home), and
 * `warden approve <run> <approval>` (which also waits for the run to confirm the decision, so it
 * includes the worker's round trip).
 *
 * Builds `dist/` first (`npm run build`) unless `--no-build` is given. BENCH_RUNS changes the runs
 * per command (default 5). BENCH_CLI_COMPARE=<path of another build's dist/cli/main.js> times that
 * build's CLI in the same rounds, against the same environment (a before/after of a change).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../src/dev-server/free-port';

const root = path.join(__dirname, '..');
const cliMain = path.join(root, 'dist', 'cli', 'main.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** One port the OS reports free on 127.0.0.1. */
const freePort = async (): Promise<number> => (await freePorts(1))[0] ?? 0;

/** Runs `node <args>` once and returns its wall time in ms; a failure stops the bench with its output. */
function timed(args: string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${result.status}:\n${result.stdout}${result.stderr}`);
  return ms;
}

function warden(args: string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync(process.execPath, [cliMain, ...args], { cwd: root, env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`warden ${args.join(' ')} exited with ${result.status}:\n${result.stdout}${result.stderr}`);
  return result.stdout.trim();
}

async function startDev(env: NodeJS.ProcessEnv): Promise<{ dev: ChildProcess; address: string }> {
  const [port, uiPort, inboxPort] = [await freePort(), await freePort(), await freePort()];
  const dev = spawn(process.execPath, [cliMain, 'dev', '--headless', '--port', String(port), '--ui-port', String(uiPort), '--inbox-port', String(inboxPort)], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  dev.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  dev.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden dev did not come up in 5 minutes:\n${output}`)), 5 * 60_000);
    dev.stdout?.on('data', () => {
      const found = /Warden dev environment is up[\s\S]*?Temporal {4}(\S+)/.exec(output)?.[1];
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    dev.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`warden dev exited with ${code}:\n${output}`));
    });
  });
  return { dev, address };
}

async function stopDev(dev: ChildProcess): Promise<void> {
  if (dev.exitCode !== null) return;
  const exited = new Promise((resolve) => dev.once('exit', resolve));
  dev.kill('SIGINT');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
  if (dev.exitCode === null) dev.kill('SIGKILL');
}

/** Starts `count` refunds that wait for finance's approval; returns their run and approval ids once `warden approvals` lists them all. */
async function waitingRuns(count: number, env: NodeJS.ProcessEnv): Promise<{ runId: string; approvalId: string }[]> {
  const script = path.join(root, 'examples', 'scripts', 'refund-large.json');
  const runIds = Array.from({ length: count }, () => warden(['run', 'refund-agent', '--goal', 'The desk from ORD-1003 arrived cracked; refund it', '--script', script], env));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const listed = JSON.parse(warden(['approvals', '--json'], env)) as { runId: string; approvalId: string }[];
    const found = runIds.map((runId) => listed.find((a) => a.runId === runId));
    if (found.every((a) => a !== undefined)) return found.map((a) => ({ runId: a.runId, approvalId: a.approvalId }));
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the runs ${runIds.join(', ')} did not all wait for approval within 2 minutes`);
}

async function main(): Promise<void> {
  if (!process.argv.includes('--no-build')) {
    process.stdout.write('building dist/ (npm run build)…\n');
    const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  }
  if (!existsSync(cliMain)) throw new Error(`${cliMain} is missing: run npm run build (or drop --no-build)`);

  const home = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-cli-'));
  const base: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: home };
  // Settings of the shell running the bench must not point the CLI elsewhere.
  for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'WARDEN_TASK_QUEUE', 'WARDEN_PAYLOAD_KEYS', 'WARDEN_SIGNING_KEY', 'WARDEN_STORE', 'NODE_OPTIONS']) delete base[name];
  process.stdout.write('starting warden dev (headless) in a temporary Warden home…\n');
  const { dev, address } = await startDev(base);
  try {
    const env: NodeJS.ProcessEnv = { ...base, TEMPORAL_ADDRESS: address };
    const compare = process.env.BENCH_CLI_COMPARE;
    const builds = compare ? [{ cli: cliMain, tag: '' }, { cli: path.resolve(compare), tag: ' (compare)' }] : [{ cli: cliMain, tag: '' }];
    const [status, ...approvals] = await waitingRuns(RUNS * builds.length + 1, env);
    if (!status) throw new Error('no run to ask for its status');

    const commands: { label: string; args: (round: number) => string[] }[] = [{ label: 'node -e 0', args: () => ['-e', '0'] }];
    builds.forEach(({ cli, tag }, b) =>
      commands.push(
        { label: `warden --help${tag}`, args: () => [cli, '--help'] },
        { label: `warden keys --help${tag}`, args: () => [cli, 'keys', '--help'] },
        { label: `warden status <run>${tag}`, args: () => [cli, 'status', status.runId] },
        {
          label: `warden approve <run> <approval>${tag}`,
          args: (round) => {
            const approval = approvals[round * builds.length + b];
            if (!approval) throw new Error('no run left to approve');
            return [cli, 'approve', approval.runId, approval.approvalId, '--as', 'alice'];
          },
        },
      ),
    );
    const times = new Map<string, number[]>(commands.map((c) => [c.label, []]));
    // One untimed round first (disk cache), then rounds that take each command in turn, so a noisy moment hits all alike.
    for (const c of commands) if (!c.label.startsWith('warden approve')) timed(c.args(0), env);
    for (let round = 0; round < RUNS; round++) for (const c of commands) times.get(c.label)?.push(timed(c.args(round), env));

    const node = median(times.get('node -e 0') ?? []);
    process.stdout.write(`\nCLI start-up, median wall time of ${RUNS} runs (Node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(1)}):\n`);
    for (const c of commands) {
      const ms = median(times.get(c.label) ?? []);
      process.stdout.write(`  ${c.label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms   ${(ms / node).toFixed(1).padStart(5)} × node -e 0\n`);
    }
  } finally {
    await stopDev(dev);
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
