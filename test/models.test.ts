import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateText } from 'ai';
import { createModelResolver, ModelConfigError, resolveModel } from '../src/activities';

/** A stand-in provider API on 127.0.0.1 that records each request's path and headers and refuses it. */
let server: Server;
let baseURL = '';
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'refused by the test server', type: 'invalid_request_error' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** Sends one prompt through the model and returns what the stand-in API received. */
async function requestOf(model: ReturnType<typeof resolveModel>): Promise<{ url: string; headers: IncomingHttpHeaders }> {
  seen.length = 0;
  // Each provider words the 400 its own way ("refused by the test server", "Bad Request"): it is an API call error either way.
  await expect(generateText({ model, prompt: 'hi', maxRetries: 0 })).rejects.toMatchObject({ name: 'AI_APICallError', statusCode: 400 });
  expect(seen).toHaveLength(1);
  return seen[0]!;
}

describe('model ids through the provider registry', () => {
  test('openai:<model> sends the key and base URL from modelEnv, not from process.env', async () => {
    const before = process.env.OPENAI_API_KEY;
    process.env.OPENAI_API_KEY = 'key-from-process-env';
    try {
      const models = createModelResolver({ OPENAI_API_KEY: 'key-from-model-env', OPENAI_BASE_URL: baseURL });
      const request = await requestOf(resolveModel('openai:gpt-4o-mini', undefined, models));
      expect(request.url).toBe('/v1/responses');
      expect(request.headers.authorization).toBe('Bearer key-from-model-env');
    } finally {
      if (before === undefined) delete process.env.OPENAI_API_KEY;
      else process.env.OPENAI_API_KEY = before;
    }
  });

  test('anthropic:<model> sends its key as x-api-key; a model id may itself contain ":"', async () => {
    const models = createModelResolver({ ANTHROPIC_API_KEY: 'anthropic-key', ANTHROPIC_BASE_URL: baseURL });
    const model = resolveModel('anthropic:claude:latest', undefined, models);
    expect(model.modelId).toBe('claude:latest');
    const request = await requestOf(model);
    expect(request.url).toBe('/v1/messages');
    expect(request.headers['x-api-key']).toBe('anthropic-key');
  });

  test('an openai-compatible agent reads the variable its apiKeyEnv names from modelEnv', async () => {
    const spec = { provider: 'openai-compatible', name: 'local', baseURL, model: 'llama3.1', apiKeyEnv: 'LOCAL_LLM_KEY' } as const;
    const request = await requestOf(resolveModel(spec, undefined, createModelResolver({ LOCAL_LLM_KEY: 'local-key' })));
    expect(request.url).toBe('/v1/chat/completions');
    expect(request.headers.authorization).toBe('Bearer local-key');
    expect(() => resolveModel(spec)).toThrow(new ModelConfigError("model local needs LOCAL_LLM_KEY in the worker's environment"));
  });

  test('without modelEnv no key is found, even when the process has one, and the error names the variable', () => {
    const before = process.env.ANTHROPIC_API_KEY;
    process.env.ANTHROPIC_API_KEY = 'key-from-process-env';
    try {
      expect(() => resolveModel('anthropic:claude-3-5-haiku-latest')).toThrow(ModelConfigError);
      expect(() => resolveModel('anthropic:claude-3-5-haiku-latest')).toThrow("model anthropic:claude-3-5-haiku-latest needs ANTHROPIC_API_KEY in the worker's environment");
      expect(() => resolveModel('openai:gpt-4o-mini', undefined, createModelResolver({ OPENAI_API_KEY: '' }))).toThrow('needs OPENAI_API_KEY');
    } finally {
      if (before === undefined) delete process.env.ANTHROPIC_API_KEY;
      else process.env.ANTHROPIC_API_KEY = before;
    }
  });

  test('an unknown provider or a bare id is a ModelConfigError that lists what works', () => {
    for (const spec of ['groq:llama-3', 'gpt-4o']) {
      expect(() => resolveModel(spec as `openai:${string}`, undefined, createModelResolver({ OPENAI_API_KEY: 'k' }))).toThrow(
        `unknown model "${spec}": use openai:<model>, anthropic:<model>, local:<model>, scripted or an openai-compatible object`,
      );
    }
  });
});
