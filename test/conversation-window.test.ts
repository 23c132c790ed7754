import type { LanguageModelV3Message } from '@ai-sdk/provider';
import { fitContext } from '../src/activities/context-window';
import { DEFAULT_LIMITS, keptAnswer, sentArgs } from '../src/activities/proposals';
import { defineAgent, DefinitionError } from '../src/agents';

const user = (text: string): LanguageModelV3Message => ({ role: 'user', content: [{ type: 'text', text }] });
const call = (id: string, text: string): LanguageModelV3Message => ({ role: 'assistant', content: [{ type: 'tool-call', toolCallId: id, toolName: 'echo', input: { text } }] });
const result = (id: string): LanguageModelV3Message => ({ role: 'tool', content: [{ type: 'tool-result', toolCallId: id, toolName: 'echo', output: { type: 'json', value: { ok: true } } }] });

describe('fitContext', () => {
  const conversation = [user('the goal'), ...Array.from({ length: 10 }, (_, i) => [call(`c${i}`, 'w'.repeat(1000)), result(`c${i}`)]).flat()];

  test('no policy, or a conversation within it: sent whole', () => {
    expect(fitContext('sys', conversation, undefined)).toEqual({ prompt: conversation });
    expect(fitContext('sys', conversation, { maxBytes: 1_000_000 })).toEqual({ prompt: conversation });
  });

  test('over the limit: the goal and the newest whole turns, the goal saying how many were left out', () => {
    const fitted = fitContext('sys', conversation, { maxBytes: 4000 });
    expect(fitted.applied).toMatchObject({ unit: 'bytes', limit: 4000 });
    const kept = fitted.prompt;
    expect(kept[0]!.role).toBe('user');
    expect(JSON.stringify(kept[0])).toContain(`${fitted.applied!.omittedMessages} earlier messages of this conversation left out`);
    // Never a result without its call: after the goal, the first kept message is a call.
    expect(kept[1]!.role).toBe('assistant');
    expect(kept.at(-1)).toBe(conversation.at(-1));
    expect(fitted.applied!.omittedMessages + kept.length - 1).toBe(conversation.length - 1);
    expect(Buffer.byteLength(JSON.stringify(kept)) + 3).toBeLessThanOrEqual(4000);
    // The cached conversation is not changed.
    expect(JSON.stringify(conversation[0])).not.toContain('left out');
  });

  test('the newest turn is sent even when it alone is over the limit', () => {
    const fitted = fitContext('sys', [user('goal'), call('a', 'short'), result('a'), call('b', 'v'.repeat(5000)), result('b')], { maxBytes: 1000 });
    expect(fitted.prompt.map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(fitted.applied?.omittedMessages).toBe(2);
  });

  test('an agent takes one limit, a whole number of at least 256', () => {
    const agent = (context: unknown) => defineAgent({ name: 'a', instructions: 'x', model: 'scripted', tools: [], context: context as never });
    expect(agent({ maxTokens: 8000 }).context).toEqual({ maxTokens: 8000 });
    expect(() => agent({ maxTokens: 10 })).toThrow(/context.maxTokens must be a whole number of at least 256/);
    expect(() => agent({ maxTokens: 1000, maxBytes: 1000 })).toThrow(/one of maxTokens or maxBytes/);
    expect(() => agent({ tokens: 1000 })).toThrow(DefinitionError);
  });
});

describe('refused arguments', () => {
  test('sentArgs keeps the keys, cuts long strings, bounds the whole, and shows nothing of a non-object', () => {
    const shown = sentArgs({ a: 'q'.repeat(10_000), list: Array.from({ length: 100 }, (_, i) => i), nested: { deep: { deeper: 'ok' } } });
    expect(shown.a).toMatch(/^q{200}… \(10000 characters\)$/);
    expect((shown.list as number[]).length).toBeLessThanOrEqual(20);
    expect(shown['[cut]']).toMatch(/value\(s\) left out/);
    expect(Buffer.byteLength(JSON.stringify(shown))).toBeLessThan(4096);
    expect(sentArgs('card 4111')).toEqual({ '[cut]': 'the arguments were a string, not an object' });
    expect(sentArgs(undefined)).toEqual({});
  });

  test('keptAnswer replaces only the arguments refused for their size, and says what it cut', () => {
    const message = {
      role: 'assistant' as const,
      content: [
        { type: 'text', text: 'trying' },
        { type: 'tool-call', toolCallId: 'a', toolName: 'echo', input: { text: 'fine' } },
        { type: 'tool-call', toolCallId: 'b', toolName: 'echo', input: { text: 'x'.repeat(100_000) } },
      ],
    };
    const kept = keptAnswer(message, DEFAULT_LIMITS);
    expect(kept.cut).toBe(1);
    expect(kept.message.content[1]).toBe(message.content[1]);
    expect(kept.message.content[2]).toMatchObject({ toolCallId: 'b', input: { '[cut]': expect.stringMatching(/98 KiB of arguments removed from the conversation \(over the 64 KiB limit\)/) } });
    expect(keptAnswer({ role: 'assistant', content: [message.content[1]!] }, DEFAULT_LIMITS).cut).toBe(0);
  });
});
