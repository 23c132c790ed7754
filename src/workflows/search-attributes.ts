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

export const wardenSearchAttributes = [agentSearchAttribute, statusSearchAttribute, requesterSearchAttribute, replayOfSearchAttribute] as const;
