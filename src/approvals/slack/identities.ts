import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Identity } from '../identity';
import { formatZodError } from '../../zod-error';
import { SlackConfigError } from './slack-config-error';

/** Slack user id → the Warden identity that person decides as. */
export type SlackIdentityMap = ReadonlyMap<string, Identity>;

const identitySchema = z.strictObject({
  id: z.string().regex(/^[^\s:]+$/, 'must be a user id without spaces or ":" (policies name it as user:<id>)'),
  name: z.string().min(1).optional(),
  groups: z.array(z.string().regex(/^[^\s]+$/, 'must be a group name without spaces')).default([]),
});
const mapSchema = z.record(z.string().regex(/^[A-Z0-9]+$/, 'must be a Slack user id such as U024BE7LH'), identitySchema);

/** Validates a mapping object `{ "U123": { "id": "alice", "groups": ["finance"] } }`; `source` names it in errors. */
export function parseSlackIdentities(value: unknown, source = 'slack identities'): SlackIdentityMap {
  const parsed = mapSchema.safeParse(value);
  if (!parsed.success) throw new SlackConfigError(`${source}: ${formatZodError(parsed.error)}`);
  // A Map, so a Slack id such as "constructor" can never reach an object's prototype.
  return new Map(Object.entries(parsed.data).map(([slackId, v]) => [slackId, { id: v.id, ...(v.name ? { name: v.name } : {}), groups: v.groups }]));
}

/** Reads the Slack identity mapping file (JSON or YAML). Anyone not in it can click but decides nothing. */
export function loadSlackIdentities(file: string): SlackIdentityMap {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SlackConfigError(`cannot read Slack identities ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseSlackIdentities(raw, file);
}
