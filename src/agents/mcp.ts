import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type * as McpClientModule from '@modelcontextprotocol/sdk/client/index.js';
import type * as McpStdioModule from '@modelcontextprotocol/sdk/client/stdio.js';
import type * as McpHttpModule from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type * as McpTypesModule from '@modelcontextprotocol/sdk/types.js';
import type { CallToolResult, McpError, Tool as McpToolInfo } from '@modelcontextprotocol/sdk/types.js';
import type * as McpAjvModule from '@modelcontextprotocol/sdk/validation/ajv-provider.js';
import { z } from 'zod';
import { digestOf, DURATION_PATTERN, durationMs, sha256Hex, type RetrySettings } from '../governance';
import { MCP_SERVER_NAME, MCP_TOOL_NAME, toolMatches } from '../governance/policy/policy-tools';
import { DefinitionError, ToolError, type AnyTool, type ToolContext, type ToolRisk } from './define';
import { errorMarker, WardenError } from '../errors';

/* eslint-disable @typescript-eslint/no-require-imports -- the MCP SDK is loaded on first use: see mcpSdk */
/**
 * The MCP SDK, loaded when an agent first defines MCP tools: a worker (or a CLI command) whose
 * agents use no MCP server never loads it, a tenth of a second of `warden worker`'s start.
 */
const mcpSdk = () => ({
  Client: (require('@modelcontextprotocol/sdk/client/index.js') as typeof McpClientModule).Client,
  StdioClientTransport: (require('@modelcontextprotocol/sdk/client/stdio.js') as typeof McpStdioModule).StdioClientTransport,
  StreamableHTTPClientTransport: (require('@modelcontextprotocol/sdk/client/streamableHttp.js') as typeof McpHttpModule).StreamableHTTPClientTransport,
  types: require('@modelcontextprotocol/sdk/types.js') as typeof McpTypesModule,
  AjvJsonSchemaValidator: (require('@modelcontextprotocol/sdk/validation/ajv-provider.js') as typeof McpAjvModule).AjvJsonSchemaValidator,
});
/* eslint-enable @typescript-eslint/no-require-imports */

/** An MCP server the worker starts as a child process and talks to over stdin/stdout. */
export interface McpStdioServer {
  /** Names the tools: `mcp:<name>/<tool>`. Letters, digits, `_` and `-`. */
  name: string;
  command: string;
  args?: string[];
  /** Added to a minimal environment (PATH, HOME, …): the server does not inherit the worker's variables. */
  env?: Record<string, string>;
  cwd?: string;
}

/** An MCP server reached over Streamable HTTP. */
export interface McpHttpServer {
  name: string;
  url: string | URL;
  /** Sent with every request (an `Authorization` header, say); read in the worker, never part of a run. */
  headers?: Record<string, string>;
}

export type McpServer = McpStdioServer | McpHttpServer;

export interface McpToolsOptions {
  server: McpServer;
  /** Tool names as the server lists them, or prefixes ending in `*`; default every tool. */
  include?: string[];
  /** Tool names or prefixes to leave out (applied after `include`). */
  exclude?: string[];
  /**
   * `tool.risk` for policies: one level for every tool, or one per tool (by the server's name for
   * it). Default from the tool's annotations, which are the server's own claims: `readOnlyHint`
   * low, `destructiveHint: false` medium, anything else high (MCP's own default is destructive).
   */
  risk?: ToolRisk | Record<string, ToolRisk>;
  /** Start-to-close timeout of one call, e.g. `30s` (default `1m`); a policy may override it. */
  timeout?: string;
  /** Temporal retry policy of a call; only connection failures and timeouts are retried. */
  retry?: RetrySettings;
  /** Top-level arguments to keep out of audit trails and approval screens, by tool: `{ create_issue: ['body'] }`. */
  sensitive?: Record<string, string[]>;
  /** How long connecting and listing the tools may take when the worker starts (default `30s`). */
  connectTimeout?: string;
}

/**
 * The tools of one MCP server, as an agent's `tools` entry. They are listed when the worker
 * starts (`AgentRegistry.resolveTools`, which `createWardenWorker` awaits), not when the module
 * loads. Create it with `defineMcpTools`.
 */
export interface McpTools {
  readonly kind: 'warden.mcp-tools';
  readonly server: string;
  /** Connects and lists the server's tools as Warden tools, once: later calls return the same listing. */
  list(): Promise<AnyTool[]>;
  /** Closes the connection (a stdio server's process ends); a later call connects again. */
  close(): Promise<void>;
}

/** What the model sees of `mcp:<server>/<tool>`: providers accept only `^[a-zA-Z0-9_-]{1,64}$`. */
export function mcpModelName(server: string, tool: string): string {
  const name = `mcp__${server}__${tool}`.replace(/[^a-zA-Z0-9_-]/g, '_');
  return name.length <= 64 ? name : `${name.slice(0, 55)}_${sha256Hex(`${server}/${tool}`).slice(0, 8)}`;
}

/** The name policies, the audit trail and Temporal (the activity type) know an MCP tool by. */
export function mcpToolName(server: string, tool: string): string {
  return `mcp:${server}/${tool}`;
}

/** Digest of an MCP tool's input schema, as runs pin it. */
export function mcpSchemaDigest(inputSchema: unknown): string {
  return 'sha256:' + digestOf(inputSchema);
}

const isStdio = (server: McpServer): server is McpStdioServer => typeof (server as McpStdioServer).command === 'string';

/** The server as messages name it: its command, or its URL without credentials or query (either may hold a secret). */
function describeServer(server: McpServer): string {
  if (isStdio(server)) return `MCP server "${server.name}" (${[server.command, ...(server.args ?? [])].join(' ')})`;
  const url = new URL(server.url);
  return `MCP server "${server.name}" (${url.origin}${url.pathname})`;
}

/** An error's message with the system's reason underneath (`fetch failed (ECONNREFUSED)`), found along its causes. */
const messageOf = (err: unknown): string => {
  if (!(err instanceof Error)) return String(err);
  let code: string | undefined;
  for (let cause: unknown = err, depth = 0; cause instanceof Error && depth < 5 && !code; depth += 1) {
    const c = (cause as { code?: unknown }).code;
    if (typeof c === 'string') code = c;
    cause = (cause as { cause?: unknown }).cause;
  }
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
};

/**
 * An MCP server could not be reached, or the connection broke during a call. The message names the
 * server and what it last wrote. Not a `ToolError`: Temporal retries the call, on a new connection.
 */
export class McpUnreachableError extends WardenError {
  static override readonly marker = errorMarker('McpUnreachableError');
  override name = 'McpUnreachableError';
}

/** One client per server per worker: connected on first use, connected again after the server went away. */
class McpConnection {
  private client: Promise<Client> | undefined;
  private current: Client | undefined;
  /** Bumped on every new connection: a new session may serve another version of the server. */
  generation = 0;
  /** The server said its tool list changed (`notifications/tools/list_changed`). */
  listChanged = false;
  private stderrTail = '';
  private stderrEnded: Promise<void> = Promise.resolve();

  readonly description: string;

  constructor(
    readonly server: McpServer,
    private readonly connectTimeoutMs: number,
  ) {
    this.description = describeServer(server);
  }

  async connected(): Promise<Client> {
    this.client ??= this.connect().catch(async (err: unknown) => {
      this.client = undefined;
      throw new McpUnreachableError(`${this.description} is unreachable: ${messageOf(err)}${await this.lastWords()}`);
    });
    return this.client;
  }

  private async connect(): Promise<Client> {
    const server = this.server;
    const { Client, StdioClientTransport, StreamableHTTPClientTransport, types } = mcpSdk();
    const client = new Client({ name: 'warden', version: '0.1.0' });
    let transport;
    if (isStdio(server)) {
      const stdio = new StdioClientTransport({ command: server.command, args: server.args ?? [], env: server.env, cwd: server.cwd, stderr: 'pipe' });
      // Read, so a chatty server never blocks on a full pipe; the tail explains a server that died.
      this.stderrTail = '';
      const stderr = stdio.stderr;
      stderr?.on('data', (chunk: Buffer) => (this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-1000)));
      this.stderrEnded = stderr ? new Promise<void>((resolve) => stderr.once('end', resolve).once('close', resolve)) : Promise.resolve();
      transport = stdio;
    } else {
      transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: server.headers ?? {} } });
    }
    client.onclose = () => {
      // A later connection may have replaced this one already; only this one's end forgets it.
      if (this.current === client) {
        this.current = undefined;
        this.client = undefined;
      }
    };
    await client.connect(transport, { timeout: this.connectTimeoutMs });
    this.current = client;
    client.setNotificationHandler(types.ToolListChangedNotificationSchema, () => {
      this.listChanged = true;
    });
    this.generation += 1;
    return client;
  }

  /** What a stdio server last wrote to stderr, for messages about it going away; waits a moment for a dying process's last lines. */
  async lastWords(): Promise<string> {
    await Promise.race([this.stderrEnded, sleep(200, undefined, { ref: false })]);
    const tail = this.stderrTail.trim();
    return tail ? `; its last output: ${tail.slice(-300)}` : '';
  }

  async listTools(): Promise<McpToolInfo[]> {
    const client = await this.connected();
    const tools: McpToolInfo[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: this.connectTimeoutMs });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    this.listChanged = false;
    return tools;
  }

  /** Drops the connection, so the next call connects anew (a server restarted behind its URL, a process that died). */
  async reset(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.current = undefined;
    if (client) await client.then((c) => c.close()).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.reset();
  }
}

function riskOf(options: McpToolsOptions, info: McpToolInfo): ToolRisk {
  const given = typeof options.risk === 'string' ? options.risk : options.risk?.[info.name];
  if (given) return given;
  if (info.annotations?.readOnlyHint === true) return 'low';
  return info.annotations?.destructiveHint === false ? 'medium' : 'high';
}

/** The server's schema with the configured arguments marked `sensitive`, as redaction reads it. */
function markSensitive(schema: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const copy = structuredClone(schema);
  if (fields.length === 0) return copy;
  const properties = (copy.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const field of fields) properties[field] = { ...(properties[field] ?? {}), sensitive: true };
  copy.properties = properties;
  return copy;
}

/** What the model gets back: the structured result if there is one, else the text, else the content parts. */
function resultValue(result: CallToolResult): unknown {
  if (result.structuredContent !== undefined) return result.structuredContent;
  const content = result.content ?? [];
  if (content.every((part) => part.type === 'text')) return content.map((part) => part.text).join('\n');
  return content;
}

const textOf = (result: CallToolResult): string =>
  (result.content ?? [])
    .map((part) => (part.type === 'text' ? part.text : `[${part.type}]`))
    .join('\n')
    .slice(0, 2000);

/** Errors of a call that trying again cannot help: the server answered, and said no. */
function isAnswer(err: unknown): err is McpError {
  const { ErrorCode, McpError } = mcpSdk().types;
  const retryable: number[] = [ErrorCode.ConnectionClosed, ErrorCode.RequestTimeout];
  return err instanceof McpError && !retryable.includes(err.code);
}

/**
 * The tools of an MCP server, for an agent's `tools` list: each becomes an ordinary Warden tool
 * named `mcp:<server>/<tool>` (offered to the model as `mcp__<server>__<tool>`), governed like
 * any other (schema, budgets, loop detector, policy, approval, audit, redaction) and run as a
 * Temporal activity of that name. The listing is taken when the worker starts and each run pins
 * the schema digests it started with: a tool whose schema changed since is refused, not re-schemaed.
 *
 * Arguments are checked against the server's own JSON Schema (with the SDK's Ajv validator) in
 * the model activity, before any policy sees them.
 */
export function defineMcpTools(options: McpToolsOptions): McpTools {
  const { server } = options;
  if (!MCP_SERVER_NAME.test(server?.name ?? '')) throw new DefinitionError(`MCP server name "${server?.name}" must match ${MCP_SERVER_NAME.source}`);
  const hasCommand = typeof (server as Partial<McpStdioServer>).command === 'string';
  const hasUrl = (server as Partial<McpHttpServer>).url !== undefined;
  if (hasCommand === hasUrl) throw new DefinitionError(`MCP server ${server.name}: give either command (stdio) or url (Streamable HTTP)`);
  if (hasUrl) {
    let url: URL;
    try {
      url = new URL((server as McpHttpServer).url);
    } catch {
      throw new DefinitionError(`MCP server ${server.name}: url is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DefinitionError(`MCP server ${server.name}: url must be http: or https:, not ${url.protocol}`);
  }
  for (const [field, value] of [['timeout', options.timeout], ['connectTimeout', options.connectTimeout]] as const) {
    if (value !== undefined && !DURATION_PATTERN.test(value)) throw new DefinitionError(`MCP server ${server.name}: ${field} "${value}" is not a duration such as 30s`);
  }
  const connection = new McpConnection(server, durationMs(options.connectTimeout ?? '30s'));
  const validator = new (mcpSdk().AjvJsonSchemaValidator)();
  /** Digests of the schemas this worker listed, by the server's tool name. */
  const listed = new Map<string, string>();
  /** The server's schemas as last listed after a reconnection or a list change; undefined while the first listing holds. */
  let live: Map<string, string> | undefined;
  let checkedGeneration = 0;
  let listing: Promise<AnyTool[]> | undefined;

  const wanted = (name: string) => (options.include === undefined || options.include.some((entry) => toolMatches(entry, name))) && !(options.exclude ?? []).some((entry) => toolMatches(entry, name));

  /**
   * Before a call on a new connection (the server may have restarted) or after the server said
   * its tools changed: list again, and refuse a tool whose schema is no longer the one listed.
   */
  async function relist(): Promise<void> {
    await connection.connected();
    if (connection.generation === checkedGeneration && !connection.listChanged) return;
    live = new Map((await connection.listTools()).map((t) => [t.name, mcpSchemaDigest(t.inputSchema)]));
    checkedGeneration = connection.generation;
  }

  async function refuseIfChanged(name: string, governedName: string): Promise<void> {
    await relist();
    if (!live) return;
    const now = live.get(name);
    if (now === undefined) throw new ToolError(`${connection.description} no longer offers ${name}: not called`);
    if (now !== listed.get(name)) {
      throw new ToolError(`the input schema of ${governedName} changed on ${connection.description} since this worker listed it: not called (restart the worker to use the new schema)`);
    }
  }

  function toTool(info: McpToolInfo): AnyTool {
    const name = mcpToolName(server.name, info.name);
    const schema = info.inputSchema as Record<string, unknown>;
    let validate;
    try {
      validate = validator.getValidator(schema);
    } catch (err) {
      throw new DefinitionError(`${connection.description}: the input schema of ${info.name} cannot be compiled (${messageOf(err)}); leave it out with exclude: ['${info.name}']`);
    }
    // The server's JSON Schema is the tool's real schema: checked as JSON Schema, with nothing
    // added, dropped or defaulted, so the arguments the policy judges are the ones the server gets.
    const input = z.unknown().superRefine((value, ctx) => {
      const result = validate(value);
      if (!result.valid) ctx.addIssue({ code: 'custom', message: (result.errorMessage ?? 'does not match the schema').replace(/\bdata(?=[/ ])/g, 'args') });
    });
    const schemaDigest = mcpSchemaDigest(info.inputSchema);
    listed.set(info.name, schemaDigest);
    const tool: AnyTool = {
      kind: 'warden.tool',
      name,
      modelName: mcpModelName(server.name, info.name),
      description: info.description ?? info.title ?? `${info.name} (MCP server ${server.name})`,
      input,
      inputJsonSchema: markSensitive(schema, options.sensitive?.[info.name] ?? []),
      schemaDigest,
      risk: riskOf(options, info),
      ...(options.timeout ? { timeout: options.timeout } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
      run: async (args: Record<string, unknown>, ctx: ToolContext) => {
        let result: CallToolResult;
        try {
          await refuseIfChanged(info.name, name);
          const client = await connection.connected();
          result = (await client.callTool({ name: info.name, arguments: args, _meta: { 'warden/idempotencyKey': ctx.idempotencyKey } }, undefined, {
            signal: ctx.signal,
            // The activity's own timeout ends the call (its signal aborts): no second, shorter clock here.
            timeout: 24 * 60 * 60 * 1000,
            onprogress: (progress) => ctx.heartbeat(progress),
          })) as CallToolResult;
        } catch (err) {
          if (ToolError.isInstance(err) || ctx.signal.aborted) throw err;
          if (isAnswer(err)) throw new ToolError(`${connection.description} refused the call: ${err.message}`);
          // The server is gone or the connection broke: connect anew on the next attempt (Temporal retries).
          const words = await connection.lastWords();
          await connection.reset();
          throw McpUnreachableError.isInstance(err) ? err : new McpUnreachableError(`${connection.description} is unreachable: ${messageOf(err)}${words}`);
        }
        if (result.isError) throw new ToolError(`the server reported an error: ${textOf(result) || 'no details'}`);
        return resultValue(result);
      },
    };
    return tool;
  }

  async function list(): Promise<AnyTool[]> {
    const infos = (await connection.listTools()).filter((info) => wanted(info.name));
    checkedGeneration = connection.generation;
    const bad = infos.filter((info) => !MCP_TOOL_NAME.test(info.name)).map((info) => JSON.stringify(info.name));
    if (bad.length > 0) throw new DefinitionError(`${connection.description} lists tools whose names Warden cannot govern: ${bad.join(', ')} (names use letters, digits, _ - and .); leave them out with exclude`);
    for (const pattern of options.include ?? []) {
      if (!infos.some((info) => toolMatches(pattern, info.name))) throw new DefinitionError(`${connection.description} has no tool matching include entry "${pattern}"`);
    }
    const tools = infos.map(toTool);
    const byModelName = new Map<string, string>();
    for (const tool of tools) {
      const other = byModelName.get(tool.modelName ?? tool.name);
      if (other) throw new DefinitionError(`${connection.description}: tools ${other} and ${tool.name} would both be offered to the model as ${tool.modelName}; exclude one`);
      byModelName.set(tool.modelName ?? tool.name, tool.name);
    }
    return tools;
  }

  return {
    kind: 'warden.mcp-tools',
    server: server.name,
    list() {
      listing ??= list().catch(async (err: unknown) => {
        listing = undefined;
        await connection.close();
        throw DefinitionError.isInstance(err) ? err : new DefinitionError(`cannot list the tools of ${connection.description}: ${messageOf(err)}`);
      });
      return listing;
    },
    close: () => connection.close(),
  };
}

/** Whether a value is a tool set made by `defineMcpTools`. */
export function isMcpTools(value: unknown): value is McpTools {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'warden.mcp-tools';
}
