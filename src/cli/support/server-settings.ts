import { InvalidArgumentError } from 'commander';
import pino, { type Logger } from 'pino';

/** The inbox's port when none is asked for (and, for `warden dev`, when it is free). */
export const DEFAULT_INBOX_PORT = 8787;

/** The Slack app's port in HTTP mode when none is asked for (and, for `warden dev`, when it is free). */
export const DEFAULT_SLACK_PORT = 3000;

const PINO_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** A logger for a server the CLI runs: `WARDEN_LOG_LEVEL` if it names a level, else `fallback`. */
export function serverLogger(name: string, fallback: string): Logger {
  const wanted = (process.env.WARDEN_LOG_LEVEL ?? '').toLowerCase();
  return pino({ name, level: PINO_LEVELS.has(wanted) ? wanted : fallback });
}

/** Parses a port a server listens on; 0 lets the system pick a free one. */
export function parseListenPort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('must be a port number (0-65535; 0 picks a free one)');
  return n;
}
