import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Custom search attributes every Warden run sets, so the Temporal UI can filter runs
 * (`WardenAgent = "refund-agent" AND WardenStatus = "awaiting_approval"`).
 * The dev server registers them at start; a production namespace needs them created once
 * (`temporal operator search-attribute create`), see docs/operations.md.
 */
export const agentSearchAttribute = defineSearchAttributeKey('WardenAgent', 'KEYWORD');
export const statusSearchAttribute = defineSearchAttributeKey('WardenStatus', 'KEYWORD');
export const requesterSearchAttribute = defineSearchAttributeKey('WardenRequester', 'KEYWORD');
/** Set at start on a run `warden replay` or `warden eval run` made: the id of the run it replays (`WardenReplayOf = "warden/refund-agent/…"`). */
export const replayOfSearchAttribute = defineSearchAttributeKey('WardenReplayOf', 'KEYWORD');

/** Set on a run that works for a tenant (from a signed start, or the worker's default): `WardenTenant = "acme"`. */
export const tenantSearchAttribute = defineSearchAttributeKey('WardenTenant', 'KEYWORD');

export const wardenSearchAttributes = [agentSearchAttribute, statusSearchAttribute, requesterSearchAttribute, replayOfSearchAttribute, tenantSearchAttribute] as const;
