/** Small helpers the benches share. */
import { readFileSync, readdirSync } from 'node:fs';

/** The middle value (the upper of the two middles for an even count); 0 for none. */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** How many requests the benches keep in flight at once. */
export const BATCH = 50;

/** `fn` on every item, BATCH at a time (each batch finished before the next starts); results in order. */
export async function inBatches<T, R>(items: readonly T[], fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let from = 0; from < items.length; from += BATCH) results.push(...(await Promise.all(items.slice(from, from + BATCH).map((item, i) => fn(item, from + i)))));
  return results;
}

/** 0, 1, …, k − 1. */
export const indices = (k: number): number[] => Array.from({ length: k }, (_, i) => i);

/**
 * CPU time (user + system, ms) used so far by the processes whose command line names `port`
 * (`--port N`: the dev server the bench started), read from /proc; null where there is no /proc.
 */
export function serverCpuMs(port: string): number | null {
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  let ticks = 0;
  for (const pid of dirs) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const at = args.indexOf('--port');
      if (at < 0 || args[at + 1] !== port || !args.includes('start-dev')) continue;
      // Fields after the command name: utime and stime are the 12th and 13th (clock ticks, 100 a second).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    } catch {
      // The process ended while being read.
    }
  }
  return ticks * 10;
}
