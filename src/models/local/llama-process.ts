/**
 * The local model's own process, forked by `LocalEngine`: it loads node-llama-cpp (an ES module
 * with a native addon), keeps each model loaded once, and answers one generation at a time. In
 * its own process so a native fault ends this process, not the worker, and so the ES module
 * loads the same way under the CLI, the compiled package and jest.
 */
import { existsSync } from 'node:fs';
import type * as NodeLlamaCpp from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { ChatHistoryItem, Llama, LlamaContextSequence, LlamaGrammar, LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { LlamaReply, LlamaRequest } from './llama-protocol';

type LlamaCpp = typeof NodeLlamaCpp;

interface Loaded {
  model: LlamaModel;
  sequence: LlamaContextSequence;
}

let llamaModule: Promise<LlamaCpp> | undefined;
let llama: Promise<Llama> | undefined;
const models = new Map<string, Promise<Loaded>>();
const grammars = new Map<string, Promise<LlamaGrammar>>();
const aborts = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

function send(reply: LlamaReply): void {
  process.send?.(reply);
}

function lib(): Promise<LlamaCpp> {
  return (llamaModule ??= import('node-llama-cpp'));
}

async function load(modelPath: string, contextSize: number): Promise<Loaded> {
  const key = `${modelPath}#${contextSize}`;
  let loaded = models.get(key);
  if (!loaded) {
    loaded = (async () => {
      const { getLlama } = await lib();
      // CPU only and never a build: the prebuilt binaries, or a clear failure. One thread: llama.cpp's
      // threads wait for each other at every step, so on a busy machine two crawl (a reply went from
      // 2 s to over 100 s at a load of 15 on two cores).
      const instance = await (llama ??= getLlama({ gpu: false, build: 'never' }));
      const model = await instance.loadModel({ modelPath });
      const context = await model.createContext({ contextSize: Math.min(contextSize, model.trainContextSize), sequences: 1, threads: 1 });
      return { model, sequence: context.getSequence() };
    })();
    models.set(key, loaded);
    loaded.catch(() => models.delete(key));
  }
  return loaded;
}

async function grammarFor(schema: Record<string, unknown>): Promise<LlamaGrammar> {
  const key = JSON.stringify(schema);
  let grammar = grammars.get(key);
  if (!grammar) {
    grammar = (async () => {
      const instance = await (llama ??= (await lib()).getLlama({ gpu: false, build: 'never' }));
      // The schema is built by tool-grammar.ts within the subset node-llama-cpp's grammar accepts.
      return instance.createGrammarForJsonSchema(schema as never);
    })();
    grammars.set(key, grammar);
    grammar.catch(() => grammars.delete(key));
  }
  return grammar;
}

async function generate(request: Extract<LlamaRequest, { type: 'generate' }>, signal: AbortSignal): Promise<LlamaReply> {
  if (!existsSync(request.modelPath)) return { type: 'error', id: request.id, message: `no model file at ${request.modelPath}`, missing: true };
  const started = Date.now();
  const { model, sequence } = await load(request.modelPath, request.contextSize);
  const grammar = await grammarFor(request.schema);
  const loadMs = Date.now() - started;
  const { LlamaChat } = await lib();
  const chat = new LlamaChat({ contextSequence: sequence });
  try {
    const history: ChatHistoryItem[] = [...request.history, { type: 'model', response: [] }];
    const generating = Date.now();
    const result = await chat.generateResponse(history, { grammar, maxTokens: request.maxTokens, temperature: request.temperature, signal, stopOnAbortSignal: true });
    const prompt = request.history.map((t) => (t.type === 'model' ? t.response.join('') : t.text)).join('\n');
    return {
      type: 'done',
      id: request.id,
      text: result.response,
      stopReason: result.metadata.stopReason,
      inputTokens: model.tokenize(prompt).length,
      outputTokens: model.tokenize(result.response).length,
      loadMs,
      generateMs: Date.now() - generating,
    };
  } finally {
    chat.dispose({ disposeSequence: false });
  }
}

process.on('message', (request: LlamaRequest) => {
  if (request.type === 'abort') {
    aborts.get(request.id)?.abort();
    return;
  }
  const controller = new AbortController();
  aborts.set(request.id, controller);
  // One generation at a time: the context has one sequence, and two would halve each other's speed on a CPU.
  queue = queue.then(async () => {
    try {
      send(controller.signal.aborted ? { type: 'error', id: request.id, message: 'aborted' } : await generate(request, controller.signal));
    } catch (err) {
      send({ type: 'error', id: request.id, message: err instanceof Error ? err.message : String(err) });
    } finally {
      aborts.delete(request.id);
    }
  });
});

// The worker went away: nothing is left to answer.
process.on('disconnect', () => process.exit(0));
