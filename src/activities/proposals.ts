import { createHash } from 'node:crypto';
import type { ZodType } from 'zod';
import type { Agent } from '../agents';
import type { CallProposal } from '../governance';
import { formatZodError } from '../zod-error';
import type { ProposedCall } from './model-call';

/** Sizes a model answer may not pass: over them a call is refused to the model, never sent to Temporal. */
export interface RunLimits {
  /** Largest JSON of one call's arguments, in bytes. Default 64 KiB. */
  maxCallArgsBytes: number;
  /** Largest JSON of all the calls of one answer together. Default 256 KiB. */
  maxAnswerArgsBytes: number;
  /** Most calls one answer may propose; the rest are refused. Default 16. */
  maxCallsPerTurn: number;
  /** Text of an answer handed to the workflow, in bytes (the whole text is in the run store). Default 16 KiB. */
  maxTextBytes: number;
}

export const DEFAULT_LIMITS: RunLimits = { maxCallArgsBytes: 64 * 1024, maxAnswerArgsBytes: 256 * 1024, maxCallsPerTurn: 16, maxTextBytes: 16 * 1024 };

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/** Whether a value survives JSON as it is (no Date, Map, class instance, undefined, NaN). */
function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isPlainJson);
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => v !== undefined && isPlainJson(v));
}

/** A model-made call id, kept short and printable; a long or odd one is replaced by its digest. */
function callIdOf(raw: unknown, index: number): string {
  const id = typeof raw === 'string' ? raw : '';
  return /^[\w.:-]{1,128}$/.test(id) ? id : `call_${index}_${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

/** A model-made tool name as governance sees it: names that no tool can have stay unknown (denied), cut short. */
function toolNameOf(raw: unknown): string {
  const name = typeof raw === 'string' ? raw : '';
  return name.length <= 64 ? name : `${name.slice(0, 61)}...`;
}

/**
 * Turns the model's proposed calls into what governance judges: each call's arguments parsed by
 * its tool's own zod schema (so the policy decides on, the approver sees and the tool receives
 * the same value), within the size limits; otherwise the call carries why it was refused.
 */
export function proposals(agent: Agent, toolCalls: readonly ProposedCall[], limits: RunLimits): CallProposal[] {
  let total = 0;
  return toolCalls.map((c, i): CallProposal => {
    const id = callIdOf(c.toolCallId, i);
    const offered = toolNameOf(c.toolName);
    const tool = agent.tools.find((t) => (t.modelName ?? t.name) === offered);
    // From here on the call carries the name governance, policies and the audit trail know the tool by.
    const name = tool?.name ?? offered;
    // Audited as sent (cut short; the workflow redacts it by the tool's schema like any arguments).
    const refuse = (refused: string): CallProposal => ({ id, name, args: tool ? sentArgs(c.invalid ? undefined : c.input) : {}, refused });
    // A tool offered under another name is called by that name only: its governed name is no second way in.
    const renamed = tool ? undefined : agent.tools.find((t) => t.modelName !== undefined && t.name === offered);
    if (renamed) return refuse(`call ${renamed.name} by the name it is offered as, ${renamed.modelName}`);
    if (i >= limits.maxCallsPerTurn) return refuse(`the answer proposed ${toolCalls.length} calls; at most ${limits.maxCallsPerTurn} are considered`);
    if (c.invalid) return refuse(c.invalid);
    const raw = c.input ?? {};
    const size = bytes(raw);
    if (size > limits.maxCallArgsBytes) return refuse(`arguments are ${kib(size)}, over the ${kib(limits.maxCallArgsBytes)} limit`);
    total += size;
    if (total > limits.maxAnswerArgsBytes) return refuse(`the answer's arguments together pass the ${kib(limits.maxAnswerArgsBytes)} limit`);
    // An unknown tool is denied by governance; its arguments are of no use to anyone.
    if (!tool) return { id, name, args: {} };
    const parsed = (tool.input as ZodType).safeParse(raw);
    if (!parsed.success) return refuse(formatZodError(parsed.error).slice(0, 2000));
    const args = parsed.data;
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return refuse(`the arguments of ${name} must be an object`);
    if (!isPlainJson(args)) return refuse(`the schema of ${name} produces values that are not plain JSON (a Date, a Map, undefined…), which cannot be governed`);
    if (bytes(args) > limits.maxCallArgsBytes) return refuse(`parsed arguments are over the ${kib(limits.maxCallArgsBytes)} limit`);
    return { id, name, args: args as Record<string, unknown> };
  });
}

/** Most of a refused call's arguments kept for its audit: strings, items and keys beyond these are cut. */
const SENT = { bytes: 2048, string: 200, items: 20, keys: 50, depth: 6 };
const CUT_KEY = '[cut]';

/**
 * A refused call's arguments as the model sent them, made small enough for the audit trail: every
 * key the model used is kept where it fits (so redaction by the tool's schema finds what is
 * sensitive), strings, arrays and objects are cut, and `[cut]` says how much was left out.
 * What is not an object is not shown (it could not be redacted by field).
 */
export function sentArgs(raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { [CUT_KEY]: `the arguments were ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`}, not an object` };
  let budget = SENT.bytes;
  let left = 0;
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') {
      const kept = value.length > SENT.string ? `${value.slice(0, SENT.string)}… (${value.length} characters)` : value;
      budget -= kept.length;
      return kept;
    }
    if (typeof value !== 'object' || value === null) {
      budget -= 8;
      return value;
    }
    if (depth >= SENT.depth) {
      left += 1;
      return '[cut: too deep]';
    }
    if (Array.isArray(value)) {
      const items: unknown[] = [];
      for (const item of value.slice(0, SENT.items)) {
        if (budget <= 0) break;
        items.push(walk(item, depth + 1));
      }
      left += value.length - items.length;
      return items;
    }
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value);
    let taken = 0;
    for (const [key, item] of entries.slice(0, SENT.keys)) {
      if (budget <= 0) break;
      budget -= key.length;
      Object.defineProperty(out, key, { value: walk(item, depth + 1), enumerable: true, writable: true, configurable: true });
      taken += 1;
    }
    left += entries.length - taken;
    return out;
  };
  const shown = walk(raw, 0) as Record<string, unknown>;
  return left > 0 || bytes(raw) > SENT.bytes * 2 ? { ...shown, [CUT_KEY]: `${kib(bytes(raw))} sent; cut for the audit trail${left > 0 ? ` (${left} value(s) left out)` : ''}` } : shown;
}

/**
 * The model's answer as the run store keeps it for the model's next calls: the arguments of each
 * call refused for its size (over `maxCallArgsBytes`, past `maxCallsPerTurn`, past
 * `maxAnswerArgsBytes` together) are replaced by a note saying what was cut, so a refused 5 MB
 * argument is not sent back to the model on every later call. Calls within the limits are kept
 * as they were proposed.
 */
export function keptAnswer<M extends { role: 'assistant'; content: readonly { type: string }[] }>(message: M, limits: RunLimits): { message: M; cut: number } {
  let total = 0;
  let index = 0;
  let cutCalls = 0;
  const content = message.content.map((part) => {
    if (part.type !== 'tool-call') return part;
    const input = (part as { input?: unknown }).input;
    const size = bytes(input ?? {});
    const i = index++;
    total += size;
    const why = size > limits.maxCallArgsBytes ? `over the ${kib(limits.maxCallArgsBytes)} limit` : i >= limits.maxCallsPerTurn ? `past the ${limits.maxCallsPerTurn} calls an answer may propose` : total > limits.maxAnswerArgsBytes ? `past the ${kib(limits.maxAnswerArgsBytes)} an answer's arguments may have together` : null;
    if (why === null) return part;
    cutCalls += 1;
    return { ...part, input: { [CUT_KEY]: `${kib(size)} of arguments removed from the conversation (${why}); the call was refused and nothing ran` } };
  });
  return cutCalls === 0 ? { message, cut: 0 } : { message: { ...message, content }, cut: cutCalls };
}

/** Cuts text to at most `max` UTF-8 bytes. */
export function cut(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  return Buffer.from(text, 'utf8').subarray(0, max).toString('utf8').replace(/\uFFFD$/, '') + '…';
}
