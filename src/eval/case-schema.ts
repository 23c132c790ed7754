import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { errorMarker, WardenError } from '../errors';
import { writePrivateFile } from '../private-files';

/** A golden case file that cannot be read or does not have the shape below. The message names the file and the field. */
export class EvalCaseError extends WardenError {
  static override readonly marker = errorMarker('EvalCaseError');
  override name = 'EvalCaseError';
}

const args = z.record(z.string(), z.unknown());
const decisionKind = z.enum(['allow', 'deny', 'require_approval']);
const runStatus = z.enum(['completed', 'failed', 'budget_exhausted', 'cancelled', 'rolled_back']);

/** One model answer, in the scripted model's `ScriptTurn` format (ids kept, so stubbed tools find their results). */
export const turnSchema = z.strictObject({
  text: z.string().optional(),
  toolCalls: z.array(z.strictObject({ id: z.string().min(1), name: z.string().min(1), args })).optional(),
  usage: z.strictObject({ inputTokens: z.int().min(0), outputTokens: z.int().min(0) }).optional(),
});

/** What a call that ran returned (or the error it failed with), by the model's call id. */
export const toolResultSchema = z.strictObject({
  callId: z.string().min(1),
  tool: z.string().min(1),
  result: z.unknown().optional(),
  error: z.string().optional(),
});

/** One policy decision of the recorded run, in the order the trail has them. */
export const decisionSchema = z.strictObject({
  callId: z.string(),
  tool: z.string().min(1),
  decision: decisionKind,
  ruleId: z.string(),
});

/** A person's vote on a call that waited for approval; replays cast the same vote for the same call. */
export const voteSchema = z.strictObject({
  callId: z.string().min(1),
  tool: z.string().min(1),
  kind: z.enum(['approve', 'reject']),
  approver: z.string().min(1),
  groups: z.array(z.string()),
  note: z.string().optional(),
});

export const outcomeSchema = z.strictObject({
  status: runStatus,
  reason: z.string(),
  steps: z.int().min(0),
  toolCalls: z.int().min(0),
  usage: z.strictObject({ inputTokens: z.number().min(0), outputTokens: z.number().min(0), costUsd: z.number().min(0) }),
});

/** What a replay must show to pass, besides the same decisions. Recorded with defaults the user may edit. */
export const expectSchema = z.strictObject({
  outcome: runStatus.optional(),
  toolsCalled: z.array(z.string().min(1)).optional(),
  toolsNotCalled: z.array(z.string().min(1)).optional(),
  maxCostUsd: z.number().min(0).optional(),
});

export const goldenCaseSchema = z.strictObject({
  /** The file format; a later one adds a number. */
  version: z.literal(1),
  agent: z.string().min(1),
  goal: z.string().min(1),
  requester: z.string().min(1),
  /** Whether a trusted channel vouched for the requester, and which; a replay vouches the same way. */
  requesterVerified: z.boolean(),
  requesterChannel: z.string().nullable(),
  recordedFrom: z.strictObject({ runId: z.string(), at: z.string(), policyVersion: z.string() }),
  turns: z.array(turnSchema),
  toolResults: z.array(toolResultSchema),
  decisions: z.array(decisionSchema),
  votes: z.array(voteSchema),
  outcome: outcomeSchema,
  expect: expectSchema,
});

export type GoldenCase = z.output<typeof goldenCaseSchema>;
export type GoldenTurn = z.output<typeof turnSchema>;
export type GoldenDecision = z.output<typeof decisionSchema>;
export type GoldenVote = z.output<typeof voteSchema>;
export type GoldenExpect = z.output<typeof expectSchema>;

function fieldOf(issue: z.core.$ZodIssue): string {
  return issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(top level)';
}

/** Checks a parsed document; `source` names it in the error. */
export function parseGoldenCase(doc: unknown, source: string): GoldenCase {
  const parsed = goldenCaseSchema.safeParse(doc);
  if (!parsed.success) {
    throw new EvalCaseError(`golden case ${source}: ${parsed.error.issues.map((i) => `${fieldOf(i)}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** Reads and checks a golden case file. Errors name the file and the field. */
export function readGoldenCase(file: string): GoldenCase {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EvalCaseError(`cannot read golden case ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new EvalCaseError(`golden case ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseGoldenCase(doc, file);
}

/**
 * Writes a golden case file (replacing one that exists). A case holds a run's goal, model answers
 * and tool results, so it is written like the run store: mode 0600, new directories 0700.
 */
export function writeGoldenCase(file: string, golden: GoldenCase): void {
  try {
    writePrivateFile(file, JSON.stringify(golden, null, 2) + '\n');
  } catch (err) {
    throw new EvalCaseError(`cannot write golden case ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
