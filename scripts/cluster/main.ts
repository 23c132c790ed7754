/**
 * `scripts/cluster/up.sh`, `down.sh` and `status.sh` (through `node --import tsx`): brings the
 * cluster of cluster.ts up or down. `up` prints the settings for workers and clients on stdout as
 * `export` lines (so `eval "$(scripts/cluster/up.sh)"` sets them) and its progress on stderr.
 */
import { parseArgs } from 'node:util';
import { ClusterError, clusterStatus, defaultClusterDir, downCluster, upCluster, type ClusterState } from './cluster';

const USAGE = `usage: scripts/cluster/up.sh [--dir DIR] [--shards N] [--namespace NS] [--no-fsync] [--log-level LEVEL]
       scripts/cluster/down.sh [--dir DIR] [--purge]
       scripts/cluster/status.sh [--dir DIR]
The state directory defaults to $WARDEN_CLUSTER_DIR, else ${defaultClusterDir()}.`;

function exports(state: ClusterState): string {
  return [
    `export TEMPORAL_ADDRESS=${state.address}`,
    `export TEMPORAL_NAMESPACE=${state.namespace}`,
    `export WARDEN_STORE=${state.runStoreUrl}`,
  ].join('\n');
}

function describe(state: ClusterState): string {
  return [
    `Temporal ${state.version} at ${state.address}, namespace ${state.namespace}: ${state.shards} history shards, PostgreSQL persistence and visibility on 127.0.0.1:${state.ports.postgres}${state.fsync ? '' : ' (fsync off)'}`,
    ...(state.uiUrl ? [`  web UI   ${state.uiUrl}`] : []),
    `  metrics  http://127.0.0.1:${state.ports.metrics}/metrics`,
    `  config   ${state.dir}/config/development.yaml, ${state.dir}/config/dynamicconfig.yaml`,
    `  logs     ${state.dir}/server.log, ${state.dir}/postgres/postgres.log`,
    `  stop     scripts/cluster/down.sh${state.dir === defaultClusterDir() ? '' : ` --dir ${state.dir}`} (--purge also removes the data)`,
  ].join('\n');
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string' },
      shards: { type: 'string' },
      namespace: { type: 'string' },
      'no-fsync': { type: 'boolean' },
      'log-level': { type: 'string' },
      purge: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  switch (command) {
    case 'up': {
      let shards: number | undefined;
      if (values.shards !== undefined) {
        shards = Number(values.shards);
        if (!Number.isInteger(shards) || shards < 1) throw new ClusterError(`--shards must be a whole number from 1 up, not "${values.shards}"`);
      }
      const cluster = await upCluster({
        ...(values.dir !== undefined ? { dir: values.dir } : {}),
        ...(shards !== undefined ? { shards } : {}),
        ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
        ...(values['no-fsync'] ? { fsync: false } : {}),
        ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
      }).catch((err: unknown) => {
        const dir = values.dir ?? defaultClusterDir();
        const message = err instanceof Error ? err.message : String(err);
        if (!clusterStatus(dir).postgres) throw err;
        throw new ClusterError(`${message}\nPostgreSQL is still running: scripts/cluster/down.sh${values.dir !== undefined ? ` --dir ${dir}` : ''} stops it (--purge also removes the data)`);
      });
      process.stderr.write(`${describe(cluster)}\n`);
      console.log(exports(cluster));
      return 0;
    }
    case 'down':
      await downCluster({ ...(values.dir !== undefined ? { dir: values.dir } : {}), purge: values.purge ?? false });
      return 0;
    case 'status': {
      const { state, server, postgres } = clusterStatus(values.dir ?? defaultClusterDir());
      if (!state) {
        console.log(`no cluster in ${values.dir ?? defaultClusterDir()}`);
        return 1;
      }
      console.log(describe(state));
      console.log(`  server   ${server ? `running (pid ${state.serverPid})` : 'stopped'}\n  postgres ${postgres ? 'running' : 'stopped'}`);
      return server && postgres ? 0 : 1;
    }
    default:
      process.stderr.write(`${command === undefined ? 'no command' : `unknown command "${command}"`}\n${USAGE}\n`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? (err.name === 'ClusterError' || err.name === 'TypeError' ? err.message : (err.stack ?? err.message)) : String(err);
    process.stderr.write(`[cluster] error: ${message}\n`);
    process.exit(1);
  },
);
