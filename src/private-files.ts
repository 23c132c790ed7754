import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Directories and files that hold Warden's keys, passwords and run data (`.warden/`, the run
 * store, the dev server's `temporal.db`, key files, eval cases): directories 0700, files 0600,
 * whatever the umask. A mode given to `mkdir` or `open` is only an upper bound (the umask narrows
 * it, and applies only when the path is new), so each new path is chmod-ed to the exact mode.
 * Windows has no POSIX modes; there the calls below change nothing.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` and any missing parents, each new one exactly 0700. A directory that exists is
 * left as it is: it may be the working directory, or shared on purpose. For Warden's own home,
 * which is narrowed when it is looser, use `ensureWardenHome`.
 */
export function makePrivateDir(dir: string): void {
  const resolved = path.resolve(dir);
  const first = mkdirSync(resolved, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  // `first` is the outermost directory mkdir created; every one from it down to `dir` is new.
  for (let d = resolved; ; d = path.dirname(d)) {
    chmodSync(d, PRIVATE_DIR_MODE);
    if (d === first || d === path.dirname(d)) break;
  }
}

/**
 * Warden's home (`$WARDEN_HOME`, else `.warden`): created 0700, or narrowed to 0700 when it exists
 * open to group or others (as versions before this one created it, 0755 under the usual umask).
 * It is Warden's own directory and holds private keys, passwords and run data, so narrowing
 * changes nothing anyone should rely on; `notice` is told, so it is never silent.
 * Returns the mode it found when it narrowed one, else null.
 */
export function ensureWardenHome(home: string, notice: (message: string) => void = (m) => process.stderr.write(`warden: ${m}\n`)): number | null {
  makePrivateDir(home);
  const mode = statSync(home).mode & 0o777;
  if (process.platform === 'win32' || (mode & 0o077) === 0) return null;
  chmodSync(home, mode & PRIVATE_DIR_MODE);
  notice(`${home} was mode ${octal(mode)}, open to group or others; narrowed it to ${octal(mode & PRIVATE_DIR_MODE)} (it holds keys, passwords and run data)`);
  return mode;
}

/**
 * Writes `data` to `file` with mode exactly 0600 (parents created 0700). `flag: 'wx'` refuses a
 * file that exists; with the default `'w'`, a file that existed more open than 0600 is narrowed too.
 */
export function writePrivateFile(file: string, data: string, flag: 'w' | 'wx' = 'w'): void {
  makePrivateDir(path.dirname(file));
  writeFileSync(file, data, { mode: PRIVATE_FILE_MODE, flag });
  chmodSync(file, PRIVATE_FILE_MODE);
}

/**
 * Narrows each existing file of `files` that is open beyond 0600 to its 0600 part; never widens
 * one (a 0400 file stays 0400). Files that do not exist are skipped.
 */
export function narrowToPrivate(files: readonly string[]): void {
  if (process.platform === 'win32') return;
  for (const f of files) {
    let mode: number;
    try {
      mode = statSync(f).mode & 0o777;
    } catch {
      continue;
    }
    if ((mode & ~PRIVATE_FILE_MODE) !== 0) chmodSync(f, mode & PRIVATE_FILE_MODE);
  }
}

/**
 * Runs `fn` (synchronous: a `spawn`) with the umask 077, so the files a child process creates
 * (the dev server's SQLite database and its journal) are 0600 from their first byte; the child
 * keeps that umask, this process gets its own back at once. Where the umask cannot be set (a
 * worker thread), `fn` runs as it is and the caller narrows the files afterwards.
 */
export function withPrivateUmask<T>(fn: () => T): T {
  let previous: number | undefined;
  try {
    previous = process.umask(0o077);
  } catch {
    return fn();
  }
  try {
    return fn();
  } finally {
    process.umask(previous);
  }
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
