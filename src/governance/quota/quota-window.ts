import { durationMs } from '../policy/duration';
import type { QuotaWindow } from '../policy/policy-schema';

/** The window a quota counts in at one moment: its key (rows of one calendar window share it) and its bounds. */
export interface QuotaWindowAt {
  /** `rolling:24h`, or the calendar window's local start with its zone: `day:2026-12-06@Europe/Berlin`. */
  key: string;
  /** Amounts booked at or after this instant count (a rolling window moves with `now`). */
  sinceMs: number;
  /** When the window ends (a rolling window: now; the next calendar window begins then). */
  untilMs: number;
}

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

// Formatters are costly to make and pure to use: one per zone.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock time in `timeZone` at an instant. */
export function localParts(ms: number, timeZone: string): LocalParts {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year ?? 0, month: parts.month ?? 1, day: parts.day ?? 1, hour: parts.hour ?? 0, minute: parts.minute ?? 0, second: parts.second ?? 0 };
}

/** The zone's offset from UTC at an instant, in ms (Europe/Berlin in summer: +2 h). */
function offsetAt(ms: number, timeZone: string): number {
  const p = localParts(ms, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - (ms - (((ms % 1000) + 1000) % 1000));
}

/**
 * The instant a wall-clock time in `timeZone` begins. Where the clocks skip that time (a spring
 * DST gap) it is the instant after the gap; where they repeat it, the first of the two.
 */
export function instantOf(local: { year: number; month: number; day: number; hour?: number }, timeZone: string): number {
  const guess = Date.UTC(local.year, local.month - 1, local.day, local.hour ?? 0);
  // Two passes settle the offset across a DST change; the earlier candidate wins a repeated hour.
  const first = guess - offsetAt(guess, timeZone);
  const second = guess - offsetAt(first, timeZone);
  return Math.min(first, second);
}

const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * The window a quota counts in at `nowMs`. A rolling window counts what was booked in the last
 * `rolling`; a calendar window counts from the start of the current hour, day or month in its time
 * zone (Intl's IANA data, so DST days are 23 or 25 hours long) and starts again at the next.
 */
export function quotaWindowAt(window: QuotaWindow, nowMs: number): QuotaWindowAt {
  if (window.rolling !== undefined) {
    return { key: `rolling:${window.rolling}`, sinceMs: nowMs - durationMs(window.rolling), untilMs: nowMs };
  }
  const zone = window.timeZone ?? 'UTC';
  const p = localParts(nowMs, zone);
  switch (window.calendar) {
    case 'hour': {
      // An hour the clocks repeat (autumn DST) is one window of two hours.
      const since = instantOf({ year: p.year, month: p.month, day: p.day, hour: p.hour }, zone);
      const until = instantOf({ year: p.year, month: p.month, day: p.day, hour: p.hour + 1 }, zone);
      return { key: `hour:${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}@${zone}`, sinceMs: since, untilMs: until };
    }
    case 'month': {
      const since = instantOf({ year: p.year, month: p.month, day: 1 }, zone);
      const until = instantOf(p.month === 12 ? { year: p.year + 1, month: 1, day: 1 } : { year: p.year, month: p.month + 1, day: 1 }, zone);
      return { key: `month:${p.year}-${pad(p.month)}@${zone}`, sinceMs: since, untilMs: until };
    }
    default: {
      const since = instantOf({ year: p.year, month: p.month, day: p.day }, zone);
      const next = new Date(Date.UTC(p.year, p.month - 1, p.day + 1));
      const until = instantOf({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() }, zone);
      return { key: `day:${p.year}-${pad(p.month)}-${pad(p.day)}@${zone}`, sinceMs: since, untilMs: until };
    }
  }
}

/** How a window reads to people: `rolling 24h`, `calendar day (Europe/Berlin)`. */
export function describeWindow(window: QuotaWindow): string {
  return window.rolling !== undefined ? `rolling ${window.rolling}` : `calendar ${window.calendar ?? 'day'} (${window.timeZone ?? 'UTC'})`;
}
