import type { LanguageModelV3Message } from '@ai-sdk/provider';
import type { ContextPolicy } from '../agents';

/** What the window left out of one model call: the `context` of its `model_turn` audit event. */
export interface ContextApplied {
  /** Messages of the stored conversation left out of this call (oldest turns after the goal). */
  omittedMessages: number;
  keptMessages: number;
  /** The size sent (system prompt included) and the limit, in the unit the policy names. */
  size: number;
  limit: number;
  unit: 'bytes' | 'tokens';
}

/** Tokens are estimated at four bytes each: the window must be cheap to compute on every call, with no tokenizer per provider. */
const BYTES_PER_TOKEN = 4;

const sizeOf = (value: unknown): number => Buffer.byteLength(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');

/**
 * The conversation one model call is sent under an agent's context policy: the system prompt
 * (sent beside it), the first message (the goal) and as many of the newest turns as fit. A turn is
 * an assistant message with the tool results that answer it, so a call is never sent without its
 * result nor a result without its call. The newest turn is always sent, even over the limit. When
 * turns are left out, the goal says so, so the model knows the conversation is not whole.
 * The stored conversation is not changed: the whole of it stays in the run store and the audit.
 */
export function fitContext(system: string, prompt: readonly LanguageModelV3Message[], policy: ContextPolicy | undefined): { prompt: LanguageModelV3Message[]; applied?: ContextApplied } {
  if (!policy || prompt.length < 3) return { prompt: [...prompt] };
  const unit = policy.maxTokens !== undefined ? 'tokens' : 'bytes';
  const limit = policy.maxTokens ?? policy.maxBytes;
  if (limit === undefined) return { prompt: [...prompt] };
  const measure = (bytes: number) => (unit === 'tokens' ? Math.ceil(bytes / BYTES_PER_TOKEN) : bytes);
  const sizes = prompt.map(sizeOf);
  const total = sizeOf(system) + sizes.reduce((a, b) => a + b, 0);
  if (measure(total) <= limit) return { prompt: [...prompt] };

  // Turns after the goal: each starts at an assistant or user message and takes the tool messages after it.
  const turns: { start: number; end: number; bytes: number }[] = [];
  for (let i = 1; i < prompt.length; i++) {
    const message = prompt[i]!;
    const last = turns.at(-1);
    if (message.role === 'tool' && last) {
      last.end = i + 1;
      last.bytes += sizes[i]!;
    } else {
      turns.push({ start: i, end: i + 1, bytes: sizes[i]! });
    }
  }
  const note = 200;
  let used = sizeOf(system) + sizes[0]! + note;
  let keepFrom = turns.length;
  for (let t = turns.length - 1; t >= 0; t--) {
    const turn = turns[t]!;
    if (t < turns.length - 1 && measure(used + turn.bytes) > limit) break;
    used += turn.bytes;
    keepFrom = t;
  }
  const firstKept = turns[keepFrom]?.start ?? prompt.length;
  const omitted = firstKept - 1;
  if (omitted <= 0) return { prompt: [...prompt] };
  const goal = prompt[0]!;
  const told = `(${omitted} earlier message${omitted === 1 ? '' : 's'} of this conversation left out to fit the agent's context limit of ${limit} ${unit}; the newest follow.)`;
  const first: LanguageModelV3Message = goal.role === 'user' ? { ...goal, content: [...goal.content, { type: 'text', text: told }] } : goal;
  const kept = [first, ...prompt.slice(firstKept)];
  return { prompt: kept, applied: { omittedMessages: omitted, keptMessages: kept.length, size: measure(used), limit, unit } };
}
