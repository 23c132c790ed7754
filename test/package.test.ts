/**
 * Warden as a user installs it: `npm pack` the package, install the tarball into a fresh project
 * outside the repository, write an agent there (TypeScript, importing 'warden' and 'zod', as the
 * README's "Install" and "Define an agent, a tool and a policy" sections show) and run it with the installed `warden`
 * command. Slow by nature (a build, an install that compiles better-sqlite3, a dev server).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { COMMAND_MODULES, createProgram } from '../src/cli/program';
import { freePorts } from '../src/dev-server/free-port';

const run = promisify(execFile);
const repoRoot = path.join(__dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-package-'));
const project = path.join(tmp, 'project');
const temporalCli = process.env.TEMPORAL_CLI_PATH ?? path.join(os.homedir(), '.cache', 'warden', 'bin', 'temporal');

const AGENTS_TS = `import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { defineAgent, defineTool, ToolError } from 'warden';

export const writeNote = defineTool({
  name: 'write_note',
  description: 'Writes a short note to a file named after it',
  input: z.object({ name: z.string().regex(/^[a-z0-9-]{1,40}$/), text: z.string().min(1).max(500) }),
  risk: 'low',
  run: ({ name, text }) => {
    const dir = process.env.NOTES_DIR;
    if (!dir) throw new ToolError('NOTES_DIR is not set for this worker'); // not retried
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, \`\${name}.txt\`), text);
    return { written: \`\${name}.txt\` };
  },
});

export const notesAgent = defineAgent({
  name: 'notes-agent',
  instructions: 'Write the notes you are asked for with write_note.',
  model: 'scripted', // answers from \`warden run --script\`; or 'openai:gpt-4o-mini', 'anthropic:…'
  tools: [writeNote],
});
`;

const POLICY_YAML = `agent: notes-agent
tools:
  write_note:
rules:
  - id: notes
    tools: [write_note]
    decision: allow
budgets: { maxSteps: 5 }
`;

const SCRIPT = [{ toolCalls: [{ name: 'write_note', args: { name: 'hello', text: 'written by a governed run' } }] }, { text: 'Done.' }];

/** One port the OS reports free on 127.0.0.1. */
const freePort = async (): Promise<number> => (await freePorts(1))[0] ?? 0;

const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: path.join(project, '.warden'), TEMPORAL_CLI_PATH: temporalCli, ...extra };
  // The test's own settings must not leak into the user's project.
  for (const name of ['TEMPORAL_ADDRESS', 'WARDEN_TASK_QUEUE', 'WARDEN_PAYLOAD_KEYS', 'WARDEN_TRUSTED_KEYS', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'NODE_OPTIONS']) if (!(name in extra)) delete env[name];
  return env;
};

let dev: ChildProcess | null = null;

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((resolve) => dev?.once('exit', resolve));
    dev.kill('SIGINT');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    if (dev.exitCode === null) dev.kill('SIGKILL');
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe('the CLI command table', () => {
  test('names exactly the commands each module registers', () => {
    for (const module of COMMAND_MODULES) {
      const program = new Command('warden');
      module.load()(program);
      expect(program.commands.map((c) => c.name()).sort()).toEqual([...module.commands].sort());
    }
  });

  test('summarises each command as its module registers it, so `warden --help` loads no module and says the same', () => {
    for (const module of COMMAND_MODULES) {
      const program = new Command('warden');
      module.load()(program);
      const help = program.createHelp();
      if (module.summaries) expect(program.commands.map((c) => [help.subcommandTerm(c), c.description()])).toEqual(module.summaries);
    }
    expect(createProgram(['--help']).helpInformation()).toBe(createProgram().helpInformation());
  });
});

describe('the installed package', () => {
  let tarball: string;

  beforeAll(async () => {
    // `npm pack` runs `prepack`, which builds dist/ from the current sources.
    await run('npm', ['pack', '--pack-destination', tmp, '--silent'], { cwd: repoRoot, timeout: 10 * 60_000, maxBuffer: 64 * 1024 * 1024 }).catch((err: Error & { stdout?: string; stderr?: string }) => {
      // The build's type errors are on stdout: say them, not only "Command failed".
      throw new Error(`npm pack (prepack: npm run build) failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    const found = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!found) throw new Error(`npm pack left no tarball in ${tmp}`);
    tarball = path.join(tmp, found);
    mkdirSync(path.join(project, 'policies'), { recursive: true });
    // No install scripts: better-sqlite3's would compile its native binding (minutes here: its
    // prebuilt download is out of reach). The repository built the same version for the same Node
    // already, so that binding is copied instead, and built only if the versions differ.
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'warden-user-project', private: true }, null, 2));
    await run('npm', ['install', tarball, 'zod@4', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], { cwd: project, timeout: 20 * 60_000, maxBuffer: 64 * 1024 * 1024 });
    const sqlite = (root: string) => path.join(root, 'node_modules', 'better-sqlite3');
    const versionOf = (root: string) => (JSON.parse(readFileSync(path.join(sqlite(root), 'package.json'), 'utf8')) as { version: string }).version;
    const built = path.join(sqlite(repoRoot), 'build', 'Release', 'better_sqlite3.node');
    if (existsSync(built) && versionOf(repoRoot) === versionOf(project)) {
      mkdirSync(path.join(sqlite(project), 'build', 'Release'), { recursive: true });
      copyFileSync(built, path.join(sqlite(project), 'build', 'Release', 'better_sqlite3.node'));
    } else {
      await run('npm', ['rebuild', 'better-sqlite3'], { cwd: project, timeout: 20 * 60_000, maxBuffer: 64 * 1024 * 1024 });
    }
    writeFileSync(path.join(project, 'agents.ts'), AGENTS_TS);
    writeFileSync(path.join(project, 'policies', 'notes-agent.yaml'), POLICY_YAML);
    writeFileSync(path.join(project, 'script.json'), JSON.stringify(SCRIPT));
  }, 35 * 60_000);

  test('ships the compiled code, its types and the CLI, and no sources', () => {
    const pkg = path.join(project, 'node_modules', 'warden');
    expect(existsSync(path.join(pkg, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(path.join(pkg, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(path.join(pkg, 'dist', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(path.join(pkg, 'src'))).toBe(false);
    expect(existsSync(path.join(pkg, 'test'))).toBe(false);
  });

  test('loads from an ES module and from CommonJS, by its exports map only', async () => {
    writeFileSync(
      path.join(project, 'check.mjs'),
      `import { defineTool, defineAgent, ToolError, WardenError } from 'warden';
import { WardenClient } from 'warden/client';
import { createWardenWorker } from 'warden/worker';
import { startTestEnvironment } from 'warden/testing';
let hidden;
try { await import('warden/dist/config.js'); hidden = 'reachable'; } catch (e) { hidden = e.code; }
console.log(JSON.stringify({ defineTool: typeof defineTool, defineAgent: typeof defineAgent, toolErrorIsWarden: new ToolError('x') instanceof WardenError, client: typeof WardenClient, worker: typeof createWardenWorker, testing: typeof startTestEnvironment, hidden }));
`,
    );
    writeFileSync(path.join(project, 'check.cjs'), `const { defineTool, WardenError, DefinitionError } = require('warden');\nconsole.log(JSON.stringify({ defineTool: typeof defineTool, definitionErrorIsWarden: new DefinitionError('x') instanceof WardenError }));\n`);
    const esm = JSON.parse((await run(process.execPath, ['check.mjs'], { cwd: project })).stdout) as Record<string, unknown>;
    expect(esm).toEqual({ defineTool: 'function', defineAgent: 'function', toolErrorIsWarden: true, client: 'function', worker: 'function', testing: 'function', hidden: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
    const cjs = JSON.parse((await run(process.execPath, ['check.cjs'], { cwd: project })).stdout) as Record<string, unknown>;
    expect(cjs).toEqual({ defineTool: 'function', definitionErrorIsWarden: true });
  }, 60_000);

  test("the agent module type-checks against the package's declarations", async () => {
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules', '@types')] }, files: ['agents.ts'] }),
    );
    await expect(run(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, timeout: 120_000 })).resolves.toBeDefined();
  }, 150_000);

  test("the project's ./agents and ./policies are the defaults; the package's own examples are not there to fall back on", async () => {
    const warden = path.join(project, 'node_modules', '.bin', 'warden');
    const listed = await run(warden, ['policy', 'list'], { cwd: project, env: childEnv({}) });
    expect(listed.stdout.trim()).toBe('no applied policies: new runs use the policy files in ./policies');
    const elsewhere = path.join(project, 'elsewhere');
    mkdirSync(elsewhere, { recursive: true });
    const failed = await run(warden, ['policy', 'list'], { cwd: elsewhere, env: childEnv({}) }).then(
      () => null,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr?.trim()).toBe('error: policies directory ./policies does not exist: point --policies at the directory of your policy files (one YAML file per agent)');
    const demo = await run(warden, ['demo', '--headless', '--exit'], { cwd: project, env: childEnv({}) }).then(
      () => null,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(demo?.code).toBe(1);
    expect(demo?.stderr).toContain("warden demo walks through Warden's example agents, which come with a clone of its repository");
  }, 120_000);

  test('`warden dev` runs the agents of ./agents.ts, suggests a run of them, and `warden run --wait` sees it complete with its effect', async () => {
    const notesDir = path.join(project, 'notes');
    const inboxPort = await freePort();
    dev = spawn(path.join(project, 'node_modules', '.bin', 'warden'), ['dev', '--headless', '--inbox-port', String(inboxPort)], {
      cwd: project,
      env: childEnv({ NOTES_DIR: notesDir }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    dev.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    dev.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`warden dev did not come up in 5 minutes:\n${output}`)), 5 * 60_000);
      const check = () => {
        // The whole banner, down to its last line: the suggestions come after the address.
        const found = output.includes('Ctrl-C stops') ? /Warden dev environment is up[\s\S]*?Temporal {4}(\S+)/.exec(output)?.[1] : undefined;
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      };
      dev?.stdout?.on('data', check);
      dev?.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`warden dev exited with ${code}:\n${output}`));
      });
    });
    expect(output).toContain('warden run notes-agent --goal "<what notes-agent should do>" --script <turns.json> --wait');
    expect(output).not.toContain('node_modules/warden/examples');
    const started = await run(path.join(project, 'node_modules', '.bin', 'warden'), ['run', 'notes-agent', '--goal', 'Write a hello note', '--script', './script.json', '--wait'], {
      cwd: project,
      env: childEnv({ TEMPORAL_ADDRESS: address }),
      timeout: 5 * 60_000,
    });
    expect(started.stdout).toMatch(/run warden\/notes-agent\/\S+: completed/);
    expect(readFileSync(path.join(notesDir, 'hello.txt'), 'utf8')).toBe('written by a governed run');
  }, 12 * 60_000);
});
