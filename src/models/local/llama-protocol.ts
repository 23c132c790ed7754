/** One turn of the chat as llama.cpp's chat template takes it. */
export type ChatTurn = { type: 'system'; text: string } | { type: 'user'; text: string } | { type: 'model'; response: string[] };

/** What the worker asks of the model process. */
export type LlamaRequest =
  | { type: 'generate'; id: number; modelPath: string; history: ChatTurn[]; schema: Record<string, unknown>; maxTokens: number; contextSize: number; temperature: number }
  | { type: 'abort'; id: number };

/** What the model process answers. */
export type LlamaReply =
  | { type: 'done'; id: number; text: string; stopReason: string; inputTokens: number; outputTokens: number; loadMs: number; generateMs: number }
  | { type: 'error'; id: number; message: string; missing?: boolean };
