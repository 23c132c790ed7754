/** Small helpers the benches share. */

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
