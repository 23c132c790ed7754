/** Milliseconds between two calls at a rate such as `10/s`, `600/m`, `1000/h`. */
export function rateInterval(rate: string): number {
  const [count, unit] = rate.split('/');
  const per = unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return per / Number(count);
}

/**
 * The slot a call gets under a rate limit (GCRA, the generic cell rate algorithm): `tatMs` is the
 * limit's theoretical arrival time so far (null for the first call). Up to `burst` calls may go at
 * once; after that one every `intervalMs`. The caller books the slot (stores `nextTatMs`) and the
 * call waits until `slotMs`, so calls queue in order instead of polling.
 */
export function rateSlot(tatMs: number | null, nowMs: number, intervalMs: number, burst: number): { slotMs: number; nextTatMs: number } {
  const tat = Math.max(tatMs ?? nowMs, nowMs);
  const slotMs = Math.max(nowMs, tat - (burst - 1) * intervalMs);
  return { slotMs, nextTatMs: Math.max(tat, slotMs) + intervalMs };
}
