/**
 * The local model's speed on this machine: ms per model call and tokens per second, for the
 * refund agent's tools and a short goal, through the same provider a worker uses (`local:smollm2`,
 * its own process, one thread). `npm run bench` prints it beside the governance cost per call;
 * `tsx bench/local-model.ts` prints it alone. Skipped with a message when the model is not fetched.
 */
import { existsSync } from 'node:fs';
import { jsonSchema, tool as aiTool } from 'ai';
import { prepareToolsAndToolChoice } from 'ai/internal';
import { z } from 'zod';
import { knownModel, localLanguageModel, modelFile, sharedLocalEngine } from '../src/models/local';

export interface LocalModelFigures {
  calls: number;
  msPerCall: number;
  outputTokensPerSecond: number;
  inputTokens: number;
  outputTokens: number;
}

const GOALS = ['Order ORD-1001 arrived a week late. Refund what is fair.', 'Refund $20 on order ORD-1002, the lid was dented.', 'Look up order ORD-1004.', 'The desk from ORD-1003 is cracked. Refund it.', 'Raise the credit limit of CUST-001 to $5,000.'];

/** Null when the model is not fetched (the message says how to fetch it). */
export async function localModelFigures(calls = Number(process.env.BENCH_LOCAL_CALLS ?? '10')): Promise<LocalModelFigures | null> {
  const file = modelFile(knownModel('smollm2'), process.env);
  if (!existsSync(file)) {
    console.log(`   local model: not fetched (${file}); run 'warden models fetch smollm2' for its figures`);
    return null;
  }
  const model = localLanguageModel('local:smollm2', file);
  const schema = (s: z.ZodType) => jsonSchema(z.toJSONSchema(s) as never);
  const { tools } = await prepareToolsAndToolChoice({
    tools: {
      lookup_order: aiTool({ description: 'Look up an order', inputSchema: schema(z.object({ orderId: z.string() })) }),
      issue_refund: aiTool({ description: 'Refund part or all of an order', inputSchema: schema(z.object({ orderId: z.string(), amount: z.number(), reason: z.string() })) }),
      change_credit_limit: aiTool({ description: "Change a customer's credit limit", inputSchema: schema(z.object({ customerId: z.string(), newLimit: z.number() })) }),
    },
    toolChoice: undefined,
    activeTools: undefined,
  });
  const call = (goal: string) => model.doGenerate({ prompt: [{ role: 'system', content: 'You handle refunds for a shop.' }, { role: 'user', content: [{ type: 'text', text: goal }] }], ...(tools ? { tools } : {}) });
  // The first call loads the model into its process: not counted.
  await call(GOALS[0]!);
  let ms = 0;
  let generateMs = 0;
  let input = 0;
  let output = 0;
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    const r = await call(GOALS[i % GOALS.length]!);
    ms += performance.now() - started;
    input += r.usage.inputTokens.total ?? 0;
    output += r.usage.outputTokens.total ?? 0;
    generateMs += Number((r.providerMetadata?.local as { generateMs?: number } | undefined)?.generateMs ?? 0);
  }
  sharedLocalEngine().stop();
  return { calls, msPerCall: ms / calls, outputTokensPerSecond: output / (generateMs / 1000), inputTokens: input / calls, outputTokens: output / calls };
}

/** The figures as `npm run bench` prints them; `governanceMsPerCall` is what a governed call costs over the same loop ungoverned. */
export function localModelLines(f: LocalModelFigures, governanceMsPerCall: number | null): string[] {
  const lines = [
    `   local:smollm2 (SmolLM2 135M Q4_1, llama.cpp, 1 thread, grammar-constrained {calls, answer}): ${f.msPerCall.toFixed(0)} ms per model call over ${f.calls} calls, ${f.outputTokensPerSecond.toFixed(1)} output tokens/s (${f.inputTokens.toFixed(0)} tokens in, ${f.outputTokens.toFixed(0)} out per call)`,
  ];
  if (governanceMsPerCall !== null) {
    lines.push(`   governance per call (governed − ungoverned loop, scenario 1): ${governanceMsPerCall.toFixed(1)} ms = ${((governanceMsPerCall / (f.msPerCall + governanceMsPerCall)) * 100).toFixed(2)}% of a governed call on this model`);
  }
  return lines;
}

if (require.main === module) {
  localModelFigures()
    .then((f) => {
      if (f) localModelLines(f, process.env.BENCH_GOVERNANCE_MS ? Number(process.env.BENCH_GOVERNANCE_MS) : null).forEach((l) => console.log(l));
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
