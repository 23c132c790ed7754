import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3GenerateResult } from '@ai-sdk/provider';
import { jsonSchema, tool, type ModelMessage } from 'ai';
import { convertToLanguageModelPrompt, standardizePrompt } from 'ai/internal';
import { ConversationCache, generate } from '../src/activities/model-call';
import { scriptedModel } from '../src/activities';

const user = (text: string): ModelMessage => ({ role: 'user', content: text });
const call = (id: string): ModelMessage => ({ role: 'assistant', content: [{ type: 'tool-call', toolCallId: id, toolName: 'noop', input: { id } }] });
const result = (id: string): ModelMessage => ({ role: 'tool', content: [{ type: 'tool-result', toolCallId: id, toolName: 'noop', output: { type: 'json', value: 'ok' } }] });

/** A conversation as the run store has it, with a record of which rows each read asked for. */
function storeOf(rows: ModelMessage[]) {
  const reads: [number, number][] = [];
  return {
    reads,
    read: async (_runId: string, toSeq: number, fromSeq: number) => {
      reads.push([fromSeq, toSeq]);
      return rows.slice(fromSeq, toSeq);
    },
  };
}

async function wholeConversation(rows: ModelMessage[]) {
  const standardized = await standardizePrompt({ messages: rows });
  return convertToLanguageModelPrompt({ prompt: { messages: standardized.messages }, supportedUrls: {}, download: undefined });
}

const model = scriptedModel([]);

describe('the conversation cache', () => {
  const rows = [user('goal'), call('a'), result('a'), call('b'), result('b'), result('b2'), call('c'), result('c')];

  it('reads and converts only the rows written since the last call, and the prompt equals the whole conversation converted at once', async () => {
    const store = storeOf(rows);
    const cache = new ConversationCache(store.read);
    for (const upTo of [1, 3, 6, 8]) {
      expect(await cache.prompt('run', upTo, model)).toEqual(await wholeConversation(rows.slice(0, upTo)));
    }
    expect(store.reads).toEqual([
      [0, 1],
      [1, 3],
      [3, 6],
      [6, 8],
    ]);
  });

  it('joins tool messages that meet across two reads into one, as the provider expects', async () => {
    const cache = new ConversationCache(storeOf(rows).read);
    await cache.prompt('run', 5, model);
    const prompt = await cache.prompt('run', 6, model);
    expect(prompt).toEqual(await wholeConversation(rows.slice(0, 6)));
    expect(prompt.at(-1)).toMatchObject({ role: 'tool', content: [{ toolCallId: 'b' }, { toolCallId: 'b2' }] });
  });

  it('rebuilds from the store when a retry or replay asks for fewer rows than it holds', async () => {
    const store = storeOf(rows);
    const cache = new ConversationCache(store.read);
    await cache.prompt('run', 8, model);
    expect(await cache.prompt('run', 3, model)).toEqual(await wholeConversation(rows.slice(0, 3)));
    expect(store.reads.at(-1)).toEqual([0, 3]);
  });

  it('keeps its callers from changing what it holds', async () => {
    const cache = new ConversationCache(storeOf(rows).read);
    const first = await cache.prompt('run', 3, model);
    first.length = 0;
    expect(await cache.prompt('run', 3, model)).toHaveLength(3);
  });

  it('refuses a stored row that is not a model message, naming the problem', async () => {
    const cache = new ConversationCache(storeOf([user('goal'), { role: 'robot', content: 'x' } as unknown as ModelMessage]).read);
    await expect(cache.prompt('run', 2, model)).rejects.toThrow(/messages/i);
  });

  it('forgets the least recently used run past its bound', async () => {
    const store = storeOf(rows);
    const cache = new ConversationCache(store.read, 2);
    await cache.prompt('r1', 1, model);
    await cache.prompt('r2', 1, model);
    await cache.prompt('r3', 1, model);
    store.reads.length = 0;
    await cache.prompt('r1', 1, model);
    expect(store.reads).toEqual([[0, 1]]);
  });
});

describe('one model call', () => {
  function answering(content: LanguageModelV3GenerateResult['content']): LanguageModelV3 & { seen: LanguageModelV3CallOptions[] } {
    const seen: LanguageModelV3CallOptions[] = [];
    return {
      seen,
      specificationVersion: 'v3',
      provider: 'test',
      modelId: 'test',
      supportedUrls: {},
      doGenerate: async (options) => {
        seen.push(options);
        return { content, finishReason: { unified: 'tool-calls', raw: undefined }, usage: { inputTokens: { total: 7, noCache: 7, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 3, text: 3, reasoning: undefined } }, warnings: [] };
      },
      doStream: () => Promise.reject(new Error('no streaming')),
    };
  }
  const tools = { noop: tool({ description: 'does nothing', inputSchema: jsonSchema({ type: 'object', properties: { i: { type: 'integer' } } }) }) };

  it('sends the instructions and the tools, and answers with the message to store, the text, the calls and the usage', async () => {
    const m = answering([
      { type: 'text', text: 'let me ' },
      { type: 'text', text: 'check', providerMetadata: { test: { id: 'x' } } },
      { type: 'tool-call', toolCallId: 'c1', toolName: 'noop', input: '{"i":1}' },
      { type: 'tool-call', toolCallId: 'c2', toolName: 'noop', input: '' },
    ]);
    const answer = await generate({ model: m, system: 'be brief', prompt: [{ role: 'user', content: [{ type: 'text', text: 'go' }] }], tools });
    expect(m.seen[0]?.prompt[0]).toEqual({ role: 'system', content: 'be brief' });
    expect(m.seen[0]?.tools).toEqual([expect.objectContaining({ type: 'function', name: 'noop', inputSchema: { type: 'object', properties: { i: { type: 'integer' } } } })]);
    expect(answer.text).toBe('let me check');
    expect(answer.toolCalls).toEqual([
      { toolCallId: 'c1', toolName: 'noop', input: { i: 1 } },
      { toolCallId: 'c2', toolName: 'noop', input: {} },
    ]);
    expect(answer.message.content).toEqual([
      { type: 'text', text: 'let me ' },
      { type: 'text', text: 'check', providerOptions: { test: { id: 'x' } } },
      { type: 'tool-call', toolCallId: 'c1', toolName: 'noop', input: { i: 1 } },
      { type: 'tool-call', toolCallId: 'c2', toolName: 'noop', input: {} },
    ]);
    expect(answer.usage).toEqual({ inputTokens: 7, outputTokens: 3 });
  });

  it('marks a call whose arguments are not JSON, so it is refused to the model instead of guessed', async () => {
    const answer = await generate({ model: answering([{ type: 'tool-call', toolCallId: 'c1', toolName: 'noop', input: '{"i": 1' }]), system: 's', prompt: [], tools });
    expect(answer.toolCalls[0]).toMatchObject({ toolCallId: 'c1', input: {}, invalid: expect.stringMatching(/not JSON/) });
  });

  it('does not propose a call the provider ran itself', async () => {
    const answer = await generate({ model: answering([{ type: 'tool-call', toolCallId: 'p1', toolName: 'web_search', input: '{}', providerExecuted: true }]), system: 's', prompt: [], tools });
    expect(answer.toolCalls).toEqual([]);
    expect(answer.message.content).toEqual([{ type: 'tool-call', toolCallId: 'p1', toolName: 'web_search', input: {}, providerExecuted: true }]);
  });
});
