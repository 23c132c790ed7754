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
 *
 * Then `warden worker`'s start: from the command to its `worker ready` line (its polls begin
 * there), the median of BENCH_WORKER_RUNS (default 3) starts of each kind, taken in turn in the
 * same rounds, against the dev environment's Temporal server on a task queue of their own:
 *   - from this clone (`node bin/warden.js worker`: the CLI from src/ through tsx), and from the
 *     installed package (`npm pack`, then `npm install --offline` of the tarball in a temporary
 *     project: the compiled dist/; BENCH_CLI_PACKAGE=<a project with warden installed> reuses one);
 *   - cold (an empty bundle cache: the workflows are bundled with webpack) and warm (the bundle
 *     from the cache, as on every restart after the first);
 *   - and the package warm with WARDEN_WORKER_TUNING=off: what the tuned worker process costs a start.
 * BENCH_WORKER_COMPARE=<another clone's directory, its dependencies installed or linked> times
 * that clone's `warden worker` cold and warm in the same rounds (a before/after of a change).
 * Both serve the example agents (the package's copy imports them from `warden`). Where the
 * offline install cannot work, the package is stood in for by its files (bin/, dist/,
 * package.json) in the temporary project, beside links to this clone's packages, and the report
 * says so. `--no-worker` leaves these out; `--worker-only` leaves the commands above out.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

const WORKER_RUNS = Number(process.env.BENCH_WORKER_RUNS ?? 3);

/** Where `warden worker` runs from: the script `warden` runs, the directory it runs in, the agents it serves. */
interface WorkerSetup {
  label: string;
  script: string;
  cwd: string;
  agents: string;
  policies: string;
}

/** The installed package: a project directory with `node_modules/warden`, and how it got there. */
interface InstalledPackage {
  setup: WorkerSetup;
  how: string;
  /** The directory this script made (the project, or for BENCH_CLI_PACKAGE the agents' copy), removed at the end. */
  temp: string;
}

/** Copies the example agents and policies into `project`, importing Warden from the package instead of from ../src. */
function copyExamples(project: string): { agents: string; policies: string } {
  const agents = path.join(project, 'agents');
  const policies = path.join(project, 'policies');
  cpSync(path.join(root, 'examples'), agents, { recursive: true });
  cpSync(path.join(root, 'policies'), policies, { recursive: true });
  for (const file of readdirSync(agents, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue;
    const full = path.join(agents, file);
    writeFileSync(full, readFileSync(full, 'utf8').replace(/'(\.\.\/)+src\/[\w/-]+'/g, "'warden'"));
  }
  return { agents, policies };
}

/**
 * `npm pack` of this clone (dist/ is built already) installed with `npm install --offline` in a
 * temporary project; where that cannot work, the package's files in its place, with this clone's
 * node_modules as its dependencies.
 */
function installPackage(): InstalledPackage {
  const given = process.env.BENCH_CLI_PACKAGE;
  if (given) {
    const project = path.resolve(given);
    const script = path.join(project, 'node_modules', 'warden', 'bin', 'warden.js');
    if (!existsSync(script)) throw new Error(`BENCH_CLI_PACKAGE=${given}: ${script} is missing`);
    // Inside the project, so the copy's `import … from 'warden'` finds its package.
    const agents = mkdtempSync(path.join(project, '.warden-bench-agents-'));
    return { setup: { label: 'package', script, cwd: project, ...copyExamples(agents) }, how: `installed in ${project}`, temp: agents };
  }
  const project = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-package-'));
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'warden-bench-project', private: true }));
  const script = path.join(project, 'node_modules', 'warden', 'bin', 'warden.js');
  process.stdout.write('packing warden (npm pack) and installing the tarball offline in a temporary project (a few minutes)…\n');
  const pack = spawnSync('npm', ['pack', root, '--ignore-scripts', '--silent', '--pack-destination', project], { cwd: project, encoding: 'utf8' });
  const tarball = pack.stdout.trim().split('\n').pop() ?? '';
  let why = `npm pack exited with ${pack.status}: ${pack.stderr.trim().split('\n').slice(-3).join(' ')}`;
  if (pack.status === 0 && tarball) {
    const install = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(project, tarball)], { cwd: project, encoding: 'utf8', timeout: 15 * 60_000 });
    if (install.status === 0 && existsSync(script)) {
      return { setup: { label: 'package', script, cwd: project, ...copyExamples(project) }, how: `npm pack, npm install --offline ${tarball}`, temp: project };
    }
    why = `npm install --offline exited with ${install.status}: ${install.stderr.trim().split('\n').slice(-3).join(' ')}`;
  }
  process.stdout.write(`  ${why}\n  standing in: bin/, dist/ and package.json in node_modules/warden, beside links to this clone's packages\n`);
  const installed = path.join(project, 'node_modules', 'warden');
  rmSync(installed, { recursive: true, force: true });
  mkdirSync(installed, { recursive: true });
  for (const entry of ['bin', 'dist', 'package.json']) cpSync(path.join(root, entry), path.join(installed, entry), { recursive: true });
  // Beside it, as an install puts them (the agents import zod too): links to this clone's packages.
  for (const entry of readdirSync(path.join(root, 'node_modules'))) {
    if (entry !== 'warden' && entry !== '.bin') symlinkSync(path.join(root, 'node_modules', entry), path.join(project, 'node_modules', entry), 'dir');
  }
  return { setup: { label: 'package', script, cwd: project, ...copyExamples(project) }, how: `stand-in for the package (${why})`, temp: project };
}

let queues = 0;

/**
 * Starts `warden worker` as an operator would and returns the ms from the spawn to its `worker
 * ready` line, then stops it (SIGINT, as Ctrl-C) and waits for it to exit. `cold` says whether
 * the cache must have missed (bundled) or hit: a start that did otherwise stops the bench.
 */
async function workerStart(setup: WorkerSetup, env: NodeJS.ProcessEnv, cacheDir: string, cold: boolean): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [setup.script, 'worker', '--agents', setup.agents, '--policies', setup.policies], {
    cwd: setup.cwd,
    env: { ...env, WARDEN_CACHE_DIR: cacheDir, WARDEN_TASK_QUEUE: `bench-worker-${process.pid}-${++queues}`, WARDEN_LOG_PRETTY: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const ms = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${setup.label}: warden worker was not ready in 5 minutes:\n${output}`)), 5 * 60_000);
      child.stdout?.on('data', (c: Buffer) => {
        output += c.toString();
        if (output.includes('worker ready')) {
          clearTimeout(timer);
          resolve(performance.now() - started);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${setup.label}: warden worker exited with ${code} before it was ready:\n${output}`));
      });
    });
    const expected = cold ? 'workflows bundled' : 'workflow bundle taken from the cache';
    if (!output.includes(expected)) throw new Error(`${setup.label}: a ${cold ? 'cold' : 'warm'} start did not log "${expected}":\n${output}`);
    return ms;
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Times `warden worker` from the clone and from the package, cold and warm, in the same rounds; prints medians and ratios. */
async function benchWorkerStart(env: NodeJS.ProcessEnv, node: number): Promise<void> {
  const pkg = installPackage();
  const clone: WorkerSetup = { label: 'clone', script: path.join(root, 'bin', 'warden.js'), cwd: root, agents: path.join(root, 'examples'), policies: path.join(root, 'policies') };
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-worker-'));
  try {
    const workerEnv: NodeJS.ProcessEnv = { ...env, WARDEN_HOME: path.join(scratch, 'home') };
    const compareDir = process.env.BENCH_WORKER_COMPARE;
    const compare: WorkerSetup[] = compareDir
      ? [{ label: 'compare', script: path.resolve(compareDir, 'bin', 'warden.js'), cwd: path.resolve(compareDir), agents: path.resolve(compareDir, 'examples'), policies: path.resolve(compareDir, 'policies') }]
      : [];
    const setups = [clone, pkg.setup, ...compare];
    const warmCache = new Map(setups.map((s) => [s.label, path.join(scratch, `cache-${s.label}`)]));
    // Untimed: fills each warm cache (and the disk cache and tsx's) once.
    for (const s of setups) await workerStart(s, workerEnv, warmCache.get(s.label) ?? '', true);
    const times = new Map<string, number[]>();
    const add = (key: string, ms: number) => times.set(key, [...(times.get(key) ?? []), ms]);
    for (let round = 0; round < WORKER_RUNS; round++) {
      for (const s of setups) {
        add(`${s.label} cold`, await workerStart(s, workerEnv, path.join(scratch, `cold-${s.label}-${round}`), true));
        add(`${s.label} warm`, await workerStart(s, workerEnv, warmCache.get(s.label) ?? '', false));
      }
      // What the tuned worker process (bin/worker-process.js: its small young generation) costs a start.
      add('package warm untuned', await workerStart(pkg.setup, { ...workerEnv, WARDEN_WORKER_TUNING: 'off' }, warmCache.get('package') ?? '', false));
    }
    const at = (key: string) => median(times.get(key) ?? []);
    process.stdout.write(
      `\nwarden worker, spawn to "worker ready", median of ${WORKER_RUNS} starts (load ${os.loadavg()[0]?.toFixed(1)}; package: ${pkg.how}):\n`,
    );
    for (const s of setups) {
      for (const kind of ['cold', 'warm']) {
        const key = `${s.label} ${kind}`;
        const all = (times.get(key) ?? []).map((ms) => (ms / 1000).toFixed(1)).join(', ');
        process.stdout.write(`  ${`${s.label}, ${kind}`.padEnd(16)} ${(at(key) / 1000).toFixed(1).padStart(5)} s   ${(at(key) / node).toFixed(0).padStart(4)} × node -e 0   (${all} s)\n`);
      }
    }
    const untuned = at('package warm untuned');
    process.stdout.write(`  ${'package, warm, WARDEN_WORKER_TUNING=off'.padEnd(16)} ${(untuned / 1000).toFixed(1)} s (the tuned process: ${(at('package warm') / untuned).toFixed(2)} × that)\n`);
    process.stdout.write(
      `  warm ÷ cold: clone ${(at('clone warm') / at('clone cold')).toFixed(2)}, package ${(at('package warm') / at('package cold')).toFixed(2)}; ` +
        `package ÷ clone: cold ${(at('package cold') / at('clone cold')).toFixed(2)}, warm ${(at('package warm') / at('clone warm')).toFixed(2)}\n`,
    );
    if (compareDir) {
      process.stdout.write(`  clone ÷ compare (${compareDir}): cold ${(at('clone cold') / at('compare cold')).toFixed(2)}, warm ${(at('clone warm') / at('compare warm')).toFixed(2)}\n`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    rmSync(pkg.temp, { recursive: true, force: true });
  }
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
    const node = process.argv.includes('--worker-only') ? median(Array.from({ length: RUNS }, () => timed(['-e', '0'], env))) : await benchCommands(env);
    if (!process.argv.includes('--no-worker')) await benchWorkerStart(env, node);
  } finally {
    await stopDev(dev);
    rmSync(home, { recursive: true, force: true });
  }
}

/** Times the commands (and `node -e 0`) in the same rounds and prints their medians; returns the median of `node -e 0`. */
async function benchCommands(env: NodeJS.ProcessEnv): Promise<number> {
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
  return node;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
