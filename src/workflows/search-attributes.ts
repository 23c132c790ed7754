import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Custom search attributes every Warden run sets, so the Temporal UI can filter runs
 * (`WardenAgent = "refund-agent" AND WardenStatus = "awaiting_approval"`).
 * The dev server registers them at start; a production namespace needs them created once
 * (`temporal operator search-attribute create`), see the README.
 */
export const agentSearchAttribute = defineSearchAttributeKey('WardenAgent', 'KEYWORD');
export const statusSearchAttribute = defineSearchAttributeKey('WardenStatus', 'KEYWORD');
export const requesterSearchAttribute = defineSearchAttributeKey('WardenRequester', 'KEYWORD');

export const wardenSearchAttributes = [agentSearchAttribute, statusSearchAttribute, requesterSearchAttribute] as const;
