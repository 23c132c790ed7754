import { randomUUID } from 'node:crypto';
import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3Content, LanguageModelV3GenerateResult, LanguageModelV3Message } from '@ai-sdk/provider';
import { LocalModelError } from './catalog';
import type { ChatTurn } from './llama-protocol';
import { sharedLocalEngine, type LocalEngine } from './local-engine';
import { answerSchema, toolInstructions, type OfferedTool } from './tool-grammar';

export interface LocalModelOptions {
  /** Most tokens one answer may have; a longer one is cut (and is then not JSON: the model answered with text). Default 320. */
  maxTokens?: number;
  /** Tokens of context the model process allocates (at most what the model was trained with). Default 4096. */
  contextSize?: number;
  /** Sampling temperature; 0 picks the likeliest token every time. Default 0.3. */
  temperature?: number;
  /** Most calls one answer may propose. Default 3. */
  maxCalls?: number;
  engine?: LocalEngine;
}

/** Longest tool result, in characters, shown to the model in one turn. */
const MAX_RESULT_CHARS = 2000;

function textOf(parts: readonly { type: string; text?: string }[]): string {
  return parts
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('');
}

function resultText(output: unknown): string {
  const o = output as { type?: string; value?: unknown; reason?: string };
  const shown = o.type === 'execution-denied' ? `denied: ${o.reason ?? 'not run'}` : typeof o.value === 'string' ? o.value : JSON.stringify(o.value ?? null);
  return shown.length > MAX_RESULT_CHARS ? `${shown.slice(0, MAX_RESULT_CHARS)}…` : shown;
}

/** The conversation as chat turns: the model's own earlier answers in the JSON form it writes, tool results as user turns. */
export function chatTurns(prompt: readonly LanguageModelV3Message[], tools: readonly OfferedTool[]): ChatTurn[] {
  const system: string[] = [];
  const turns: ChatTurn[] = [];
  const push = (turn: ChatTurn) => {
    const last = turns.at(-1);
    if (turn.type === 'user' && last?.type === 'user') last.text += `\n${turn.text}`;
    else turns.push(turn);
  };
  for (const message of prompt) {
    if (message.role === 'system') system.push(message.content);
    else if (message.role === 'user') push({ type: 'user', text: textOf(message.content) });
    else if (message.role === 'assistant') {
      const calls = message.content.flatMap((p) => (p.type === 'tool-call' ? [{ tool: p.toolName, args: p.input }] : []));
      const answer = textOf(message.content);
      turns.push({ type: 'model', response: [JSON.stringify(tools.length > 0 ? { calls, answer } : { answer })] });
    } else {
      for (const part of message.content) {
        if (part.type === 'tool-result') push({ type: 'user', text: `Result of ${part.toolName}: ${resultText(part.output)}` });
      }
    }
  }
  system.push(toolInstructions(tools));
  return [{ type: 'system', text: system.join('\n\n') }, ...turns];
}

interface Answer {
  calls?: { tool?: unknown; args?: unknown }[];
  answer?: unknown;
}

/**
 * The answer's JSON; cut at the token limit inside its text, the calls before it still count
 * (the grammar writes them first), without the text.
 */
function parseAnswer(text: string): Answer | undefined {
  try {
    return JSON.parse(text) as Answer;
  } catch {
    const at = text.lastIndexOf('"answer"');
    if (at < 0) return undefined;
    try {
      return { calls: (JSON.parse(`${text.slice(0, at).replace(/,\s*$/, '')}}`) as Answer).calls, answer: '' };
    } catch {
      return undefined;
    }
  }
}

/**
 * An AI SDK language model (`LanguageModelV3`) on a GGUF file, run by llama.cpp on the worker's
 * CPU: `local:smollm2` or `local:/path/to/model.gguf`. Its answer is constrained by a grammar to
 * `{calls, answer}` over the agent's tools, so it proposes calls the way a provider's function
 * calling does; whatever it proposes is governed like any model's calls.
 */
export function localLanguageModel(modelId: string, modelPath: string, options: LocalModelOptions = {}): LanguageModelV3 {
  const engine = options.engine ?? sharedLocalEngine();
  const maxCalls = options.maxCalls ?? 3;
  return {
    specificationVersion: 'v3',
    provider: 'local',
    modelId,
    supportedUrls: {},
    async doGenerate(call: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
      const tools: OfferedTool[] = (call.tools ?? []).flatMap((t) => (t.type === 'function' ? [{ name: t.name, description: t.description, inputSchema: t.inputSchema }] : []));
      const reply = await engine.generate(
        {
          modelPath,
          history: chatTurns(call.prompt, tools),
          schema: answerSchema(tools, maxCalls),
          maxTokens: Math.min(call.maxOutputTokens ?? Infinity, options.maxTokens ?? 320),
          contextSize: options.contextSize ?? 4096,
          temperature: options.temperature ?? 0.3,
        },
        call.abortSignal,
      );
      const content: LanguageModelV3Content[] = [];
      const parsed = parseAnswer(reply.text);
      if (parsed && typeof parsed === 'object') {
        if (typeof parsed.answer === 'string' && parsed.answer.trim() !== '') content.push({ type: 'text', text: parsed.answer });
        for (const c of Array.isArray(parsed.calls) ? parsed.calls : []) {
          if (typeof c?.tool !== 'string') continue;
          content.push({ type: 'tool-call', toolCallId: `call_${randomUUID().replace(/-/g, '').slice(0, 16)}`, toolName: c.tool, input: JSON.stringify(c.args ?? {}) });
        }
      } else if (reply.text.trim() !== '') {
        // Cut before its JSON closed: no call can be read from it, and it is no answer to show either.
        content.push({ type: 'text', text: `(the local model's answer was cut at ${reply.outputTokens} tokens before it was complete: ${reply.text.slice(0, 300)}…)` });
      }
      if (content.length === 0 && reply.stopReason === 'abort') throw new LocalModelError('the local model call was aborted');
      return {
        content,
        finishReason: { unified: content.some((c) => c.type === 'tool-call') ? 'tool-calls' : reply.stopReason === 'maxTokens' ? 'length' : 'stop', raw: reply.stopReason },
        usage: {
          inputTokens: { total: reply.inputTokens, noCache: reply.inputTokens, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: reply.outputTokens, text: reply.outputTokens, reasoning: undefined },
        },
        warnings: [],
        response: { modelId, timestamp: new Date() },
        providerMetadata: { local: { generateMs: reply.generateMs, loadMs: reply.loadMs } },
      };
    },
    async doStream() {
      throw new LocalModelError('the local model does not stream');
    },
  };
}
