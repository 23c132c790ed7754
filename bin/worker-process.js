'use strict';
// `warden worker` runs in a Node process set up for many runs waiting for people (docs/performance.md
// and bench/RESULTS.md: with 300 runs waiting, 244–259 MB instead of 371–378 after a GC): a 1 MB young
// generation per V8 isolate instead of 16–32, V8 growing and keeping less heap, and two malloc
// arenas instead of up to eight per core. Node and glibc read these settings only as a process
// starts, so the command starts itself once more with them.
//
// Left as started: a process given Node flags of its own (`node --inspect … worker`, or the
// settings by hand), `WARDEN_WORKER_TUNING=off`, and anything but `warden worker`.
const { spawn } = require('node:child_process');
const os = require('node:os');

/** The worker process's Node flags and environment. */
const NODE_FLAGS = Object.freeze(['--max-semi-space-size=1', '--optimize-for-size']);
const NODE_ENV = Object.freeze({ MALLOC_ARENA_MAX: '2' });
/** Set in the process started with the settings (so it does not start another). */
const TUNED = 'WARDEN_WORKER_TUNED';

/** Whether this invocation should start the tuned process instead of running the command itself. */
function wantsTunedProcess(argv = process.argv, env = process.env, execArgv = process.execArgv) {
  if (argv[2] !== 'worker' || argv.slice(3).some((a) => a === '--help' || a === '-h')) return false;
  if (env[TUNED] === '1' || env.WARDEN_WORKER_TUNING === 'off') return false;
  // Flags of the user's own (an inspector, say) would be repeated in the second process.
  return execArgv.length === 0 && !/--inspect/.test(env.NODE_OPTIONS ?? '');
}

/**
 * Runs `script` with this process's arguments in a Node process with the settings, and ends this
 * one as it ends. The tuned process has a process group of its own, so a Ctrl-C reaches it once
 * (from here) and a second Ctrl-C still stops it at once; SIGTERM and SIGHUP are passed on too.
 * Should this process die without passing anything on, the tuned one sees its IPC channel close
 * and drains (src/cli/dev.ts).
 */
function runTuned(script) {
  const child = spawn(process.execPath, [...NODE_FLAGS, script, ...process.argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
    env: { ...NODE_ENV, ...process.env, [TUNED]: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    });
  }
  child.on('error', (err) => {
    process.stderr.write(`error: could not start the worker process (${err.message}); WARDEN_WORKER_TUNING=off runs it in this one\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    process.exit(signal ? 128 + (os.constants.signals[signal] ?? 0) : (code ?? 1));
  });
}

module.exports = { NODE_FLAGS, NODE_ENV, wantsTunedProcess, runTuned };
