import type * as AnthropicModule from '@ai-sdk/anthropic';
import type * as OpenAIModule from '@ai-sdk/openai';
import type * as OpenAICompatibleModule from '@ai-sdk/openai-compatible';
import { NoSuchModelError, type LanguageModelV3, type LanguageModelV3CallOptions, type LanguageModelV3Content, type LanguageModelV3GenerateResult, type ProviderV3 } from '@ai-sdk/provider';
import { createProviderRegistry, NoSuchProviderError, type ProviderRegistryProvider } from 'ai';
import { existsSync } from 'node:fs';
import type { ModelSpec } from '../agents';
import { LocalModelError, localLanguageModel, localModelPath } from '../models/local';
import type { ScriptTurn } from '../workflows/run-types';
import { errorMarker, WardenError } from '../errors';

/** A model the configuration asks for cannot be built (no key, bad spec). Not retryable. */
export class ModelConfigError extends WardenError {
  static override readonly marker = errorMarker('ModelConfigError');
  override name = 'ModelConfigError';
}

/**
 * Where model API keys and base URLs come from: `OPENAI_API_KEY`, `OPENAI_BASE_URL`,
 * `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, and each openai-compatible agent's `apiKeyEnv`.
 * Warden's library code reads no environment variables: the CLI passes `process.env`.
 */
export type ModelEnv = Readonly<Record<string, string | undefined>>;

/* eslint-disable @typescript-eslint/no-require-imports -- each provider is loaded when a worker has its key or an agent names it */
const createAnthropic: typeof AnthropicModule.createAnthropic = (settings) => (require('@ai-sdk/anthropic') as typeof AnthropicModule).createAnthropic(settings);
const createOpenAI: typeof OpenAIModule.createOpenAI = (settings) => (require('@ai-sdk/openai') as typeof OpenAIModule).createOpenAI(settings);
const createOpenAICompatible: typeof OpenAICompatibleModule.createOpenAICompatible = (settings) =>
  (require('@ai-sdk/openai-compatible') as typeof OpenAICompatibleModule).createOpenAICompatible(settings);
/* eslint-enable @typescript-eslint/no-require-imports */

/** The keys each `provider:model` prefix needs, and where its API is when the env names no base URL. */
const PROVIDERS = {
  openai: { key: 'OPENAI_API_KEY', baseUrl: 'OPENAI_BASE_URL', defaultBaseUrl: 'https://api.openai.com/v1' },
  anthropic: { key: 'ANTHROPIC_API_KEY', baseUrl: 'ANTHROPIC_BASE_URL', defaultBaseUrl: 'https://api.anthropic.com/v1' },
} as const;

/** Resolves `provider:model` strings (the AI SDK's provider registry) and the keys openai-compatible agents name. Build one per worker. */
export interface ModelResolver {
  readonly registry: ProviderRegistryProvider;
  readonly env: ModelEnv;
}

/**
 * A resolver over `env`; default none, so a model that needs a key fails with a
 * `ModelConfigError` that names the variable. Only providers whose key is present are
 * registered; base URLs are passed explicitly so the AI SDK does not read `process.env` either.
 */
export function createModelResolver(env: ModelEnv = {}): ModelResolver {
  const providers: Record<string, ProviderV3> = {};
  const openai = PROVIDERS.openai;
  const openaiKey = env[openai.key];
  if (openaiKey) providers.openai = createOpenAI({ apiKey: openaiKey, baseURL: env[openai.baseUrl] || openai.defaultBaseUrl });
  const anthropic = PROVIDERS.anthropic;
  const anthropicKey = env[anthropic.key];
  if (anthropicKey) providers.anthropic = createAnthropic({ apiKey: anthropicKey, baseURL: env[anthropic.baseUrl] || anthropic.defaultBaseUrl });
  return { registry: createProviderRegistry(providers), env };
}

const NO_KEYS = createModelResolver();

function providerModel(spec: string, models: ModelResolver): LanguageModelV3 {
  try {
    return models.registry.languageModel(spec as `${string}:${string}`);
  } catch (err) {
    if (!NoSuchProviderError.isInstance(err) && !NoSuchModelError.isInstance(err)) throw err;
    const provider = spec.slice(0, Math.max(0, spec.indexOf(':')));
    if (Object.hasOwn(PROVIDERS, provider)) throw new ModelConfigError(`model ${spec} needs ${PROVIDERS[provider as keyof typeof PROVIDERS].key} in the worker's environment`);
    throw new ModelConfigError(`unknown model "${spec}": use openai:<model>, anthropic:<model>, local:<model>, scripted or an openai-compatible object`);
  }
}

/**
 * Builds the AI SDK model for a spec. API keys come from the worker's `models` (its
 * environment, as the CLI passes it): they never enter workflow input, history or logs.
 * `runTurn` is the run's own script turn for this call, used when the agent's model is plain
 * `scripted` (undefined: the run has no script; null: its script has ended).
 */
export function resolveModel(spec: ModelSpec, runTurn?: ScriptTurn | null, models: ModelResolver = NO_KEYS): LanguageModelV3 {
  if (spec === 'scripted') {
    if (runTurn === undefined) throw new ModelConfigError('agent model is "scripted" but the run has no script (warden run --script FILE)');
    return turnModel(() => runTurn ?? { text: '(the script has ended)' });
  }
  if (typeof spec === 'string' && spec.startsWith('local:')) return localModel(spec as `local:${string}`, models);
  if (typeof spec === 'string') return providerModel(spec, models);
  if (spec.provider === 'scripted') return scriptedModel(spec.script);
  let apiKey: string | undefined;
  if (spec.apiKeyEnv) {
    apiKey = models.env[spec.apiKeyEnv];
    if (!apiKey) throw new ModelConfigError(`model ${spec.name} needs ${spec.apiKeyEnv} in the worker's environment`);
  }
  return createOpenAICompatible({ name: spec.name, baseURL: spec.baseURL, apiKey }).chatModel(spec.model);
}

/** Local models, one per spec and models directory: each holds nothing but its path, the model process is shared. */
const localModels = new Map<string, LanguageModelV3>();

function localModel(spec: `local:${string}`, models: ModelResolver): LanguageModelV3 {
  const name = spec.slice('local:'.length);
  let file: string;
  try {
    file = localModelPath(name, models.env);
  } catch (err) {
    if (LocalModelError.isInstance(err)) throw new ModelConfigError(`model ${spec}: ${err.message}`);
    throw err;
  }
  if (!existsSync(file)) {
    const hint = name.endsWith('.gguf') || name.includes('/') ? 'no such file' : `not fetched yet: run 'warden models fetch ${name}'`;
    throw new ModelConfigError(`model ${spec}: ${file}: ${hint}`);
  }
  let model = localModels.get(file);
  if (!model) localModels.set(file, (model = localLanguageModel(spec, file)));
  return model;
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
