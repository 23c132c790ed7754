/**
 * The baselines' activities: what the no-op tool does (nothing, a short summary back) and the
 * ungoverned loop's model activity, used by bench/run.ts in its own worker and by
 * bench/approval-worker.ts for the bare waiting-for-approval workflow.
 */
import { Context } from '@temporalio/activity';
import type { LanguageModelV3Message } from '@ai-sdk/provider';
import { jsonSchema, tool as aiTool } from 'ai';
import { generate } from '../src/activities/model-call';
import { resolveModel } from '../src/activities';

/**
 * The ungoverned loop's model activity: the same model call (`generate`, the scripted model) as
 * the governed run's, on a prompt it keeps in memory already converted (no store, no history, no
 * validation), so the ratio isolates what governance adds. Step `of` and beyond answers with text.
 */
const conversations = new Map<string, LanguageModelV3Message[]>();
const loopTools = { noop: aiTool({ description: 'does nothing', inputSchema: jsonSchema({ type: 'object', properties: { i: { type: 'integer' } } }) }) };
async function bareModel({ step, of }: { step: number; of: number }): Promise<{ call: { name: string; args: { i: number } } | null }> {
  const id = Context.current().info.workflowExecution?.workflowId ?? 'standalone';
  const prompt = conversations.get(id) ?? [{ role: 'user', content: [{ type: 'text', text: 'bench' }] }];
  const last = prompt[prompt.length - 1];
  if (last?.role === 'assistant') {
    const call = last.content.find((c) => c.type === 'tool-call');
    if (call?.type === 'tool-call') prompt.push({ role: 'tool', content: [{ type: 'tool-result', toolCallId: call.toolCallId, toolName: call.toolName, output: { type: 'json', value: 'ok' } }] });
  }
  const turn = step < of ? { toolCalls: [{ name: 'noop', args: { i: step } }], usage: { inputTokens: 1, outputTokens: 1 } } : { text: 'done' };
  const answer = await generate({ model: resolveModel('scripted', turn), system: 'bench', prompt, tools: loopTools });
  prompt.push({ role: 'assistant', content: answer.message.content.flatMap((c) => (c.type === 'tool-call' ? [{ type: 'tool-call' as const, toolCallId: c.toolCallId, toolName: c.toolName, input: c.input }] : [])) });
  conversations.set(id, prompt);
  const proposed = answer.toolCalls[0];
  if (!proposed) {
    conversations.delete(id);
    return { call: null };
  }
  return { call: { name: proposed.toolName, args: proposed.input as { i: number } } };
}

export const bareActivities = {
  bareNoop: async () => ({ summary: 'ok' }),
  bareModel,
};
