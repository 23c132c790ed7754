import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3Content, LanguageModelV3Message } from '@ai-sdk/provider';
import type { ModelMessage, ToolSet } from 'ai';
import { asLanguageModelUsage, convertToLanguageModelPrompt, prepareToolsAndToolChoice, standardizePrompt } from 'ai/internal';

/** One part of an assistant message as the run store keeps it (the AI SDK's `ModelMessage` JSON). */
export type AssistantPart =
  | { type: 'text'; text: string; providerOptions?: unknown }
  | { type: 'reasoning'; text: string; providerOptions?: unknown }
  | { type: 'tool-call'; toolCallId: string; toolName: string; input: unknown; providerExecuted?: boolean; providerOptions?: unknown };

/** A call the model proposed. `invalid` says why its arguments could not be read (not JSON). */
export interface ProposedCall {
  toolCallId: string;
  toolName: string;
  input: unknown;
  invalid?: string;
}

export interface ModelAnswer {
  /** The assistant message to store, shaped as the AI SDK's `generateText` would have written it. */
  message: { role: 'assistant'; content: AssistantPart[] };
  text: string;
  toolCalls: ProposedCall[];
  usage: { inputTokens: number; outputTokens: number };
}

interface Conversation {
  /** How many run-store rows `prompt` holds. */
  rows: number;
  prompt: LanguageModelV3Message[];
}

/**
 * Each run's conversation, validated and converted into the provider's prompt format once per
 * row: a model call reads from the store and converts only the rows written since the run's last
 * call on this worker, so a call costs the same at step 1,000 as at step 10. (`generateText`
 * re-validates and re-converts the whole conversation on every call: 6 ms at 11 messages, 172 ms
 * at 2,001 on a 2-core machine.)
 *
 * Rows before `upTo` are final: the workflow has accepted them (the model's own answer at `upTo`
 * may still be replaced by a retry, and is read next time). A call asking for fewer rows than are
 * held (a retry or replay) rebuilds the conversation from the store; so does a run this worker has
 * not seen (a restart, another worker). Bounded: the least recently used runs are forgotten.
 */
export class ConversationCache {
  private readonly runs = new Map<string, Conversation>();

  constructor(
    private readonly read: (runId: string, toSeq: number, fromSeq: number) => Promise<unknown[]>,
    private readonly maxRuns = 256,
  ) {}

  /** The provider prompt of rows `[0, upTo)` of a run. The array is the caller's; its messages are shared and must not be changed. */
  async prompt(runId: string, upTo: number, model: LanguageModelV3): Promise<LanguageModelV3Message[]> {
    let held = this.runs.get(runId);
    if (!held || held.rows > upTo) held = { rows: 0, prompt: [] };
    if (held.rows < upTo) {
      const fresh = (await this.read(runId, upTo, held.rows)) as ModelMessage[];
      const converted = await convert(fresh, model);
      // Consecutive tool messages are one message to the provider, also across two reads.
      const [first, ...rest] = converted;
      const last = held.prompt.at(-1);
      if (first?.role === 'tool' && last?.role === 'tool') last.content.push(...first.content);
      else if (first) held.prompt.push(first);
      held.prompt.push(...rest);
      held.rows = upTo;
    }
    this.runs.delete(runId);
    this.runs.set(runId, held);
    if (this.runs.size > this.maxRuns) {
      const oldest = this.runs.keys().next().value;
      if (oldest !== undefined) this.runs.delete(oldest);
    }
    return held.prompt.slice();
  }
}

async function convert(messages: ModelMessage[], model: LanguageModelV3): Promise<LanguageModelV3Message[]> {
  if (messages.length === 0) return [];
  // The SDK's own validation and conversion, on the new rows only.
  const standardized = await standardizePrompt({ messages, allowSystemInMessages: true });
  return convertToLanguageModelPrompt({ prompt: { messages: standardized.messages }, supportedUrls: await model.supportedUrls, download: undefined });
}

/** What `prepareToolsAndToolChoice` makes of a tool set, per tool set (an agent's never changes while a worker runs). */
const preparedTools = new WeakMap<ToolSet, Promise<Pick<LanguageModelV3CallOptions, 'tools' | 'toolChoice'>>>();

function toolsFor(tools: ToolSet): Promise<Pick<LanguageModelV3CallOptions, 'tools' | 'toolChoice'>> {
  let prepared = preparedTools.get(tools);
  if (!prepared) preparedTools.set(tools, (prepared = prepareToolsAndToolChoice({ tools, toolChoice: undefined, activeTools: undefined })));
  return prepared;
}

function parseInput(raw: string): { input: unknown; invalid?: string } {
  if (raw.trim() === '') return { input: {} };
  try {
    return { input: JSON.parse(raw) as unknown };
  } catch (err) {
    return { input: {}, invalid: `the arguments are not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
}

/**
 * One model call: the system instructions and the converted conversation to the provider, the
 * answer back as the message to store, its text, the calls it proposes and its token usage.
 * No retries (Temporal owns them) and no tool execution (governance decides what runs).
 * Calls the provider ran itself (`providerExecuted`) stay in the message and are not proposed:
 * Warden offers the model only its own function tools, so none should appear.
 */
export async function generate(options: { model: LanguageModelV3; system: string; prompt: LanguageModelV3Message[]; tools: ToolSet; abortSignal?: AbortSignal }): Promise<ModelAnswer> {
  const { model } = options;
  const result = await model.doGenerate({
    prompt: [{ role: 'system', content: options.system }, ...options.prompt],
    ...(await toolsFor(options.tools)),
    ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
  });
  const content: AssistantPart[] = [];
  const toolCalls: ProposedCall[] = [];
  const texts: string[] = [];
  const meta = (part: LanguageModelV3Content) => ('providerMetadata' in part && part.providerMetadata !== undefined ? { providerOptions: part.providerMetadata } : {});
  for (const part of result.content) {
    if (part.type === 'text') {
      if (part.text.length === 0) continue;
      texts.push(part.text);
      content.push({ type: 'text', text: part.text, ...meta(part) });
    } else if (part.type === 'reasoning') {
      content.push({ type: 'reasoning', text: part.text, ...meta(part) });
    } else if (part.type === 'tool-call') {
      const { input, invalid } = parseInput(part.input);
      content.push({ type: 'tool-call', toolCallId: part.toolCallId, toolName: part.toolName, input, ...(part.providerExecuted ? { providerExecuted: true } : {}), ...meta(part) });
      if (!part.providerExecuted) toolCalls.push({ toolCallId: part.toolCallId, toolName: part.toolName, input, ...(invalid ? { invalid } : {}) });
    }
    // Files, sources and provider-executed results are not kept: nothing in Warden reads them.
  }
  const usage = asLanguageModelUsage(result.usage);
  return { message: { role: 'assistant', content }, text: texts.join(''), toolCalls, usage: { inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 } };
}
