import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3Content, LanguageModelV3GenerateResult } from '@ai-sdk/provider';
import type { ModelSpec } from '../agents';
import type { ScriptTurn } from '../workflows/types';
import { WardenError } from '../errors';

/** A model the configuration asks for cannot be built (no key, bad spec). Not retryable. */
export class ModelConfigError extends WardenError {
  override name = 'ModelConfigError';
}

function requireEnv(name: string, forModel: string): string {
  const value = process.env[name];
  if (!value) throw new ModelConfigError(`model ${forModel} needs ${name} in the worker's environment`);
  return value;
}

/**
 * Builds the AI SDK model for a spec. API keys are read here, in the worker, from the
 * environment: they never enter workflow input, history or logs.
 * `runTurn` is the run's own script turn for this call, used when the agent's model is plain
 * `scripted` (undefined: the run has no script; null: its script has ended).
 */
export function resolveModel(spec: ModelSpec, runTurn?: ScriptTurn | null): LanguageModelV3 {
  if (spec === 'scripted') {
    if (runTurn === undefined) throw new ModelConfigError('agent model is "scripted" but the run has no script (warden run --script FILE)');
    return turnModel(() => runTurn ?? { text: '(the script has ended)' });
  }
  if (typeof spec === 'string') {
    const [provider, ...rest] = spec.split(':');
    const modelName = rest.join(':');
    if (provider === 'openai') {
      return createOpenAI({ apiKey: requireEnv('OPENAI_API_KEY', spec), baseURL: process.env.OPENAI_BASE_URL })(modelName);
    }
    if (provider === 'anthropic') {
      return createAnthropic({ apiKey: requireEnv('ANTHROPIC_API_KEY', spec), baseURL: process.env.ANTHROPIC_BASE_URL })(modelName);
    }
    throw new ModelConfigError(`unknown model "${spec}": use openai:<model>, anthropic:<model>, scripted or an openai-compatible object`);
  }
  if (spec.provider === 'scripted') return scriptedModel(spec.script);
  const apiKey = spec.apiKeyEnv ? requireEnv(spec.apiKeyEnv, spec.name) : undefined;
  return createOpenAICompatible({ name: spec.name, baseURL: spec.baseURL, apiKey }).chatModel(spec.model);
}

/** Rough token estimate for scripted turns that give no usage: four characters a token. */
function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/**
 * A real AI SDK language model that answers from a script: turn i answers the i-th model call
 * of the run, counted from the assistant messages already in the prompt, so a retried call
 * gets the same answer and a resumed run picks up where it was.
 */
export function scriptedModel(script: readonly ScriptTurn[]): LanguageModelV3 {
  return turnModel((turnIndex) => script[turnIndex] ?? { text: `(script ended after ${script.length} turns)` });
}

/** A model whose answer to the i-th call (i = assistant messages already in the prompt) is `turnFor(i)`. */
function turnModel(turnFor: (turnIndex: number) => ScriptTurn): LanguageModelV3 {
  return {
    specificationVersion: 'v3',
    provider: 'warden',
    modelId: 'scripted',
    supportedUrls: {},
    async doGenerate(options: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
      const turnIndex = options.prompt.filter((m) => m.role === 'assistant').length;
      const turn = turnFor(turnIndex);
      const content: LanguageModelV3Content[] = [];
      if (turn.text) content.push({ type: 'text', text: turn.text });
      (turn.toolCalls ?? []).forEach((call, i) => {
        content.push({ type: 'tool-call', toolCallId: call.id ?? `call_${turnIndex + 1}_${i + 1}`, toolName: call.name, input: JSON.stringify(call.args ?? {}) });
      });
      const inputTokens = turn.usage?.inputTokens ?? estimateTokens(JSON.stringify(options.prompt));
      const outputTokens = turn.usage?.outputTokens ?? estimateTokens(JSON.stringify(content));
      return {
        content,
        finishReason: { unified: content.some((c) => c.type === 'tool-call') ? 'tool-calls' : 'stop', raw: undefined },
        usage: {
          inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined },
        },
        warnings: [],
      };
    },
    async doStream() {
      throw new ModelConfigError('the scripted model does not stream');
    },
  };
}
