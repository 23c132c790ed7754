/**
 * The cluster scripts' refusals (scripts/cluster): bad options, unknown commands, a directory with no
 * cluster, a build without Go. Each fails before anything starts and says what was wrong. What a
 * running cluster does is test/cluster.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.join(__dirname, '..');

function cluster(args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/cluster/main.ts', ...args], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('scripts/cluster refusals', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'warden-cluster-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a shard count that is not a whole number from 1 up', () => {
    for (const shards of ['0', 'four', '2.5']) {
      const r = cluster(['up', '--dir', dir, '--shards', shards]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`--shards must be a whole number from 1 up, not "${shards}"`);
    }
  });

  it('refuses an unknown option and an unknown command, with the usage', () => {
    const option = cluster(['up', '--shard', '4']);
    expect(option.status).toBe(1);
    expect(option.stderr).toContain("Unknown option '--shard'");
    const command = cluster(['start']);
    expect(command.status).toBe(2);
    expect(command.stderr).toContain('unknown command "start"');
    expect(command.stderr).toContain('usage: scripts/cluster/up.sh');
  });

  it('says there is no cluster in a directory without one, and down there does nothing', () => {
    const status = cluster(['status', '--dir', dir]);
    expect(status.status).toBe(1);
    expect(status.stdout).toContain(`no cluster in ${dir}`);
    expect(cluster(['down', '--dir', dir]).status).toBe(0);
  });

  it('build.sh names Go when it is not on PATH and the binaries are not built', () => {
    const cache = mkdtempSync(path.join(os.tmpdir(), 'warden-cluster-build-'));
    try {
      const r = spawnSync('bash', ['scripts/cluster/build.sh'], { cwd: root, env: { PATH: '/usr/bin:/bin', HOME: cache, WARDEN_CACHE_DIR: cache }, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('go is not on PATH: the Temporal server is built from its Go module (go.temporal.io/server@v1.29.1)');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
