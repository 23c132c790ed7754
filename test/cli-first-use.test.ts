/**
 * What a new user meets first, without a Temporal server: the command line itself (unknown
 * commands, defaults that point into their project), how costs and policy changes read, who the
 * CLI thinks they are, the first Temporal CLI build, and the CLI's layout (no command file loads
 * another).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loginName } from '../src/cli/context';
import { shortData, usd } from '../src/cli/format';
import { verdictChange, whatIfLines } from '../src/cli/support/what-if-report';
import { defaultAgentsPath, defaultPoliciesPath, exampleAgentsPath, examplePoliciesPath } from '../src/cli/support/project-paths';
import { resolveTemporalBinary } from '../src/dev-server';
import type { WhatIfReport } from '../src/governance/change-safety/what-if';
import { runCli, wardenBin } from './fixtures/run-cli';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-first-use-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The CLI run in `cwd` with a Warden home of its own and no Temporal settings from the suite. */
function warden(args: string[], cwd = tmp, extra: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_HOME: path.join(tmp, 'home'), ...extra };
  for (const name of ['TEMPORAL_ADDRESS', 'WARDEN_STORE', 'WARDEN_SIGNING_KEY']) if (!(name in extra)) delete env[name];
  const r = spawnSync(process.execPath, [wardenBin, ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('an unknown command', () => {
  test.each([
    [['nosuchcommand'], 'warden'],
    [['nosuchcommand', '--help'], 'warden'],
    [['help', 'nosuchcommand'], 'warden'],
    [['-h', 'nosuchcommand'], 'warden'],
    [['policy', 'nosuch', '--help'], 'warden policy'],
  ])('warden %j: exit 2, named, with the help to read', async (args, parent) => {
    const r = await runCli(args, process.env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`error: unknown command '${args.find((a) => a.startsWith('nosuch')) ?? ''}'`);
    expect(r.stderr).toContain(`(run '${parent} --help' for the commands)`);
  });

  test('a misspelt one gets the command it resembles', async () => {
    const r = await runCli(['stauts', '--help'], process.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('(Did you mean status?)');
  });

  test('help for a command that exists still exits 0', async () => {
    for (const args of [['--help'], ['status', '--help'], ['help', 'status'], ['policy', 'check', '--help']]) {
      const r = await runCli(args, process.env);
      expect([args, r.code]).toEqual([args, 0]);
      expect(r.stdout).toContain('Usage: warden');
    }
  });
});

describe('defaults that point into the project', () => {
  const project = path.join(tmp, 'project');
  const empty = path.join(tmp, 'empty');
  const inDir = <T>(dir: string, fn: () => T): T => {
    const was = process.cwd();
    process.chdir(dir);
    try {
      return fn();
    } finally {
      process.chdir(was);
    }
  };
  beforeAll(() => {
    mkdirSync(path.join(project, 'policies'), { recursive: true });
    writeFileSync(path.join(project, 'agents.ts'), 'export {};\n');
    mkdirSync(empty, { recursive: true });
  });

  test("a project's own ./agents and ./policies; in a clone without them, the repository's examples", () => {
    expect(inDir(project, () => [defaultAgentsPath(), defaultPoliciesPath()])).toEqual(['./agents', './policies']);
    // These tests run from a clone: its examples stand in where the working directory has no agents.
    expect(inDir(empty, () => [defaultAgentsPath(), defaultPoliciesPath()])).toEqual([exampleAgentsPath(), examplePoliciesPath()]);
  });

  test('a policies directory that is not there is one line that names --policies', async () => {
    const r = warden(['policy', 'list', '--policies', './nowhere']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('error: policies directory ./nowhere does not exist: point --policies at the directory of your policy files (one YAML file per agent)');
  });

  test('an agents module that is not there is one line that names --agents, before anything connects', async () => {
    const r = warden(['worker', '--agents', './nowhere', '--policies', path.join(project, 'policies')], tmp, { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('error: agents module ./nowhere not found (a .ts or .js file, or a directory with an index file): point --agents at the module that exports your agents');
  });
});

describe('money', () => {
  test.each([
    [0, '$0.00'],
    [0.0012079999999999999, '$0.00121'],
    [0.000004, '$0.000004'],
    [0.0497, '$0.0497'],
    [0.05, '$0.05'],
    [0.5, '$0.50'],
    [12.345, '$12.35'],
    [1234.5, '$1,234.50'],
    [-0.0123, '-$0.0123'],
  ])('%p is %s', (n, text) => {
    expect(usd(n)).toBe(text);
  });

  test('audit event data shows costs as dollars and other numbers without float noise', () => {
    expect(shortData({ costUsd: 0.0012079999999999999, usage: { costUsd: 0.1 + 0.2 }, step: 2 })).toBe('costUsd=$0.00121 usage={"costUsd":0.3} step=2');
  });
});

describe('policy what-if, for people', () => {
  const verdict = (decision: 'allow' | 'deny' | 'require_approval', ruleId: string, approvers?: string[]) => ({ decision, ruleId, reason: '', ...(approvers ? { approvers } : {}) });

  test('says what changed: the decision, the rule, and the approvers when only they changed', () => {
    expect(verdictChange(verdict('allow', 'a'), verdict('deny', 'b'))).toBe('allow → deny; rule a → b');
    expect(verdictChange(verdict('allow', 'a'), verdict('allow', 'b'))).toBe('allow; rule a → b');
    expect(verdictChange(verdict('require_approval', 'r', ['group:finance']), verdict('require_approval', 'r', ['group:finance-leads']))).toBe(
      'require_approval; rule r; approvers group:finance → group:finance-leads',
    );
  });

  test('a rule-changed call is printed with its change, and a rule that only asks other approvers says so', () => {
    const before = verdict('require_approval', 'transfers-need-finance', ['group:finance']);
    const after = verdict('require_approval', 'transfers-need-finance', ['group:finance-leads']);
    const report: WhatIfReport = {
      agent: 'test-agent',
      candidateVersion: 'pv_new',
      runs: 1,
      calls: 2,
      unchanged: 1,
      diffs: [{ runId: 'warden/test-agent/1', callId: 'c1', tool: 'transfer', seq: 3, at: '2025-01-01T00:00:00Z', kind: 'rule-changed', before, after, missing: [] }],
      byKind: { 'allow-to-deny': 0, 'deny-to-allow': 0, 'approval-added': 0, 'approval-removed': 0, 'rule-changed': 1 },
      byRule: [{ kind: 'rule-changed', from: 'transfers-need-finance', to: 'transfers-need-finance', count: 1 }],
      missing: [],
    };
    const text = whatIfLines('candidate.yaml', report).join('\n');
    expect(text).toMatch(/rule-changed\s+1\s+same decision, by another rule or with other approvers/);
    expect(text).toMatch(/rule-changed\s+transfers-need-finance\s+transfers-need-finance \(other approvers\)\s+1/);
    expect(text).toMatch(/warden\/test-agent\/1\s+c1\s+transfer\s+rule-changed\s+require_approval; rule transfers-need-finance; approvers group:finance → group:finance-leads/);
  });
});

describe('who the CLI acts as', () => {
  const saved = { USER: process.env.USER, USERNAME: process.env.USERNAME };
  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test('$USER, else the account the process runs as: never a made-up name', () => {
    process.env.USER = 'dana';
    expect(loginName()).toBe('dana');
    delete process.env.USER;
    delete process.env.USERNAME;
    expect(loginName()).toBe(os.userInfo().username);
  });
});

describe('the first Temporal CLI build', () => {
  const saved = { PATH: process.env.PATH, TEMPORAL_CLI_PATH: process.env.TEMPORAL_CLI_PATH, WARDEN_CACHE_DIR: process.env.WARDEN_CACHE_DIR };
  afterAll(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test('says what it does, that it happens once, and how far it is while it runs', async () => {
    // A stand-in for `go install -v`: module downloads and compiled packages on stderr, then the binary in $GOBIN.
    const bin = path.join(tmp, 'fake-go');
    mkdirSync(bin, { recursive: true });
    const go = path.join(bin, 'go');
    writeFileSync(
      go,
      [
        '#!/bin/sh',
        'echo "go: downloading github.com/temporalio/cli v1.5.1" >&2',
        'echo "go: downloading go.temporal.io/server v1.27.0" >&2',
        'sleep 0.4',
        'echo "internal/goarch" >&2',
        'echo "github.com/temporalio/cli/cmd/temporal" >&2',
        'sleep 0.4',
        'printf "#!/bin/sh\\necho temporal\\n" > "$GOBIN/temporal"',
        'chmod +x "$GOBIN/temporal"',
      ].join('\n'),
    );
    chmodSync(go, 0o755);
    process.env.PATH = `${bin}${path.delimiter}/bin${path.delimiter}/usr/bin`;
    delete process.env.TEMPORAL_CLI_PATH;
    process.env.WARDEN_CACHE_DIR = path.join(tmp, 'cache');
    const notes: string[] = [];
    const built = await resolveTemporalBinary({ log: (m) => notes.push(m), progressEveryMs: 150 });
    expect(built).toBe(path.join(tmp, 'cache', 'bin', 'temporal'));
    expect(notes[0]).toContain(`building v1.5.1 from source with ${go}`);
    expect(notes[0]).toContain('This happens once and takes a few minutes');
    const progress = notes.filter((n) => n.includes('still building the Temporal CLI'));
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toMatch(/\d+s so far, 2 module\(s\) downloaded, 2 package\(s\) compiled/);
    expect(notes.at(-1)).toMatch(/^Built the Temporal CLI into .* in \d+s \(2 packages compiled\)\.$/);
  });
});

describe('the CLI layout', () => {
  const cliDir = path.join(__dirname, '..', 'src', 'cli');
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
  /** The files that register top-level commands (`registerX(program: Command)`). */
  const commandFiles = sources(cliDir).filter((f) => /export function register\w+\(program: Command\)/.test(readFileSync(f, 'utf8')));

  test('no file but the command table (program.ts, which loads each on demand) imports a command file', () => {
    expect(commandFiles.length).toBeGreaterThan(10);
    const offenders: string[] = [];
    for (const file of sources(cliDir).filter((f) => path.basename(f) !== 'program.ts')) {
      for (const m of readFileSync(file, 'utf8').matchAll(/^.*(?:from |require\()'(\.{1,2}\/[^']+)'.*$/gm)) {
        if (commandFiles.includes(`${path.resolve(path.dirname(file), m[1] ?? '')}.ts`)) offenders.push(`${path.relative(cliDir, file)}: ${m[0].trim()}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
