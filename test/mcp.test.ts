import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AgentRegistry, defineAgent, defineMcpTools, DefinitionError, mcpModelName, toolSpec, type Agent, type McpTools } from '../src/agents';
import { checkPolicy, CompiledPolicy, parsePolicy, PolicyError, type AuditEvent, type PolicyInput, type RunFacts } from '../src/governance';
import type { PendingApproval } from '../src/workflows/run-types';
import { echo } from './fixtures/test-agents';
import { notesServer } from './fixtures/mcp-server';
import { createTestBed, eventually, type TestBed } from './helpers';

const repoRoot = path.join(__dirname, '..');
const stdioFixture = path.join(__dirname, 'fixtures', 'mcp-stdio-server.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'warden-mcp-'));
const notesFile = path.join(tmp, 'notes.log');

/** Lines the stdio server recorded: one per call that reached it. */
const stdioCalls = (): string[] => (existsSync(notesFile) ? readFileSync(notesFile, 'utf8').split('\n').filter(Boolean) : []);

/** A Streamable HTTP MCP server on 127.0.0.1 (stateless: a server per request), recording calls in memory. */
interface HttpMcp {
  url: string;
  calls: string[];
  variant: 1 | 2;
  close(): Promise<void>;
}

async function startHttpMcp(): Promise<HttpMcp> {
  const state: HttpMcp = { url: '', calls: [], variant: 1, close: async () => undefined };
  const http: Server = createServer((req, res) => {
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const server = notesServer({ record: (line) => state.calls.push(line), variant: state.variant });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  state.close = () =>
    new Promise<void>((resolve) => {
      http.closeAllConnections();
      http.close(() => resolve());
    });
  return state;
}

const fastRetry = { maximumAttempts: 2, initialInterval: '100ms', backoffCoefficient: 1 };

function notesTools(): McpTools {
  return defineMcpTools({
    server: { name: 'notes', command: process.execPath, args: ['--import', 'tsx', stdioFixture], env: { MCP_NOTES_FILE: notesFile }, cwd: repoRoot },
    exclude: ['secret_*', 'create_ticket'],
    retry: fastRetry,
  });
}

function trackerTools(url: string): McpTools {
  return defineMcpTools({ server: { name: 'tracker', url }, include: ['create_ticket'], sensitive: { create_ticket: ['reporterEmail'] }, retry: fastRetry });
}

function mcpAgent(tools: Agent['tools'][number] | McpTools, ...more: (Agent['tools'][number] | McpTools)[]): Agent {
  return defineAgent({ name: 'mcp-agent', instructions: 'You use MCP tools.', model: 'scripted', tools: [echo, tools, ...more] });
}

/** Notes are written freely but never dropped; tickets wait for support; prefixes name whole servers. */
function mcpPolicy(overrides: Partial<PolicyInput> = {}) {
  return parsePolicy(
    {
      agent: 'mcp-agent',
      tools: { echo: {}, 'mcp:notes/*': {}, 'mcp:tracker/*': {}, 'mcp:gone/*': {} },
      rules: [
        { id: 'notes-are-kept', tools: ['mcp:notes/drop_notes'], decision: 'deny', reason: 'notes are never dropped' },
        { id: 'tickets-need-support', tools: ['mcp:tracker/*'], decision: 'require_approval', reason: 'a person opens tickets', approval: { approvers: ['group:support'], timeout: '10m' } },
        { id: 'allow-rest', decision: 'allow' },
      ],
      ...overrides,
    },
    'mcp test policy',
  );
}

let tracker: HttpMcp;
let gone: HttpMcp;
let bed: TestBed;

beforeAll(async () => {
  [tracker, gone] = await Promise.all([startHttpMcp(), startHttpMcp()]);
  const goneTools = defineMcpTools({ server: { name: 'gone', url: gone.url }, include: ['write_note'], retry: fastRetry });
  bed = await createTestBed({ agents: [mcpAgent(notesTools(), trackerTools(tracker.url), goneTools)], allowUnsignedDecisions: true });
});
afterAll(async () => {
  await bed?.close();
  await Promise.all([tracker?.close(), gone?.close()]);
});

async function auditOf(runId: string, on = bed): Promise<AuditEvent[]> {
  return on.client.auditTrail(runId, on.store);
}

/** What the model was told about the call stored at `seq`. */
async function toolMessage(runId: string, seq: number, on = bed): Promise<unknown> {
  const rows = (await on.store.readMessages(runId, seq + 1)) as { content: { toolName: string; output: { value: unknown } }[] }[];
  return rows[seq]?.content[0]?.output.value;
}

async function waitForApproval(runId: string, on = bed): Promise<PendingApproval> {
  const [approval] = await eventually(async () => {
    const pending = await on.client.pendingApprovals(runId);
    return pending.length > 0 ? pending : undefined;
  }, 30_000, 'a pending approval');
  return approval as PendingApproval;
}

describe('MCP tools in a governed run', () => {
  test('an allowed call over stdio runs as its own activity and reaches the server once', async () => {
    const before = stdioCalls().length;
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'write a note',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__notes__write_note', args: { text: 'hello' } }] }, { text: 'noted' }],
    });
    const outcome = await bed.client.result(runId);
    expect(outcome).toMatchObject({ status: 'completed', text: 'noted', toolCalls: 1 });
    expect(stdioCalls().slice(before)).toEqual(['write_note hello']);
    const history = await bed.client.handle(runId).fetchHistory();
    const types = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    expect(types).toEqual(['prepareAndCallModel', 'mcp:notes/write_note', 'callModel']);
    const audit = await auditOf(runId);
    expect(audit.find((e) => e.type === 'policy_decision')?.data).toMatchObject({ tool: 'mcp:notes/write_note', decision: 'allow', ruleId: 'allow-rest' });
    expect(audit.find((e) => e.type === 'tool_succeeded')?.data).toMatchObject({ tool: 'mcp:notes/write_note', summary: 'wrote hello' });
    expect(await toolMessage(runId, 2)).toBe('wrote hello');
  });

  test('a denied MCP tool never reaches the server, and its governed name is no way around its model name', async () => {
    const before = stdioCalls().length;
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'clean up',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__notes__drop_notes', args: {} }, { name: 'mcp:notes/write_note', args: { text: 'sneaky' } }] }, { text: 'could not' }],
    });
    expect((await bed.client.result(runId)).status).toBe('completed');
    expect(stdioCalls().slice(before)).toEqual([]);
    const audit = await auditOf(runId);
    expect(audit.find((e) => e.type === 'policy_decision')?.data).toMatchObject({ tool: 'mcp:notes/drop_notes', decision: 'deny', ruleId: 'notes-are-kept' });
    expect(await toolMessage(runId, 2)).toContain('denied by policy (rule notes-are-kept), nothing ran');
    expect(await toolMessage(runId, 3)).toContain('by the name it is offered as, mcp__notes__write_note');
    expect(audit.filter((e) => e.type === 'tool_started')).toHaveLength(0);
  });

  test("arguments that break the server's JSON Schema are refused before the server", async () => {
    const before = stdioCalls().length;
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'write a note',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__notes__write_note', args: { text: 5 } }] }, { text: 'oops' }],
    });
    expect((await bed.client.result(runId)).status).toBe('completed');
    expect(stdioCalls().slice(before)).toEqual([]);
    const rejected = (await auditOf(runId)).find((e) => e.type === 'schema_rejected');
    expect(rejected?.data).toMatchObject({ tool: 'mcp:notes/write_note' });
    expect(await toolMessage(runId, 2)).toMatch(/^invalid arguments for mcp:notes\/write_note, nothing ran: .*args\/text must be string/);
  });

  test('an approval-required MCP tool over HTTP waits, with redacted arguments, then runs once approved', async () => {
    const before = tracker.calls.length;
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'open a ticket',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__tracker__create_ticket', args: { title: 'printer', reporterEmail: 'dana@example.com' } }] }, { text: 'opened' }],
    });
    const approval = await waitForApproval(runId);
    expect(approval).toMatchObject({ tool: 'mcp:tracker/create_ticket', ruleId: 'tickets-need-support', approvers: ['group:support'] });
    expect(approval.args).toEqual({ title: 'printer', reporterEmail: '[redacted]' });
    expect(tracker.calls.length).toBe(before);
    await bed.client.approve(runId, { approvalId: approval.approvalId, approver: 'sam', groups: ['support'] });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', toolCalls: 1 });
    expect(tracker.calls.slice(before)).toEqual(['create_ticket printer']);
    expect(await toolMessage(runId, 2)).toEqual({ ticket: 'T-1', title: 'printer' });
  });

  test('a tool whose schema changed while the run waited (worker restarted) is refused, not re-schemaed', async () => {
    const before = tracker.calls.length;
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'open a ticket',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__tracker__create_ticket', args: { title: 'scanner' } }] }, { text: 'tried' }],
    });
    const approval = await waitForApproval(runId);
    await bed.stopWorker();
    tracker.variant = 2;
    // A new worker lists the changed server; the run still holds the schema it started with.
    const restarted = await createTestBed({ agents: [mcpAgent(trackerTools(tracker.url))], taskQueue: bed.taskQueue, storePath: bed.storePath, allowUnsignedDecisions: true });
    try {
      await restarted.client.approve(runId, { approvalId: approval.approvalId, approver: 'sam', groups: ['support'] });
      expect(await restarted.client.result(runId)).toMatchObject({ status: 'completed', text: 'tried' });
      expect(tracker.calls.slice(before)).toEqual([]);
      const failed = (await auditOf(runId, restarted)).find((e) => e.type === 'tool_failed');
      expect(failed?.data).toMatchObject({ tool: 'mcp:tracker/create_ticket' });
      expect(String(failed?.data.error)).toContain('the input schema of mcp:tracker/create_ticket changed since this run started');
      expect(await toolMessage(runId, 2, restarted)).toMatch(/^mcp:tracker\/create_ticket failed: .*changed since this run started/);
    } finally {
      await restarted.close();
      tracker.variant = 1;
      await bed.startWorker();
    }
  });

  test('a server that went away gives the model a clear error, and the run goes on', async () => {
    await gone.close();
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'write somewhere',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__gone__write_note', args: { text: 'lost' } }] }, { toolCalls: [{ name: 'echo', args: { text: 'still here' } }] }, { text: 'went on' }],
    });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'went on', toolCalls: 2 });
    const audit = await auditOf(runId);
    const failed = audit.find((e) => e.type === 'tool_failed');
    expect(failed?.data).toMatchObject({ tool: 'mcp:gone/write_note' });
    expect(await toolMessage(runId, 2)).toMatch(new RegExp(`^mcp:gone/write_note failed: MCP server "gone" \\(${gone.url.replace(/[/.]/g, '\\$&')}\\) is unreachable: .*fetch failed`));
    expect(audit.find((e) => e.type === 'tool_succeeded')?.data).toMatchObject({ tool: 'echo' });
  });

  test('a stdio server that dies mid-call: the model is told with its last words, and the next call starts it again', async () => {
    const before = stdioCalls().length;
    const runId = await bed.client.startRun({
      agent: 'mcp-agent',
      goal: 'crash, then write',
      requester: 'carol',
      policy: mcpPolicy(),
      script: [{ toolCalls: [{ name: 'mcp__notes__crash', args: {} }] }, { toolCalls: [{ name: 'mcp__notes__write_note', args: { text: 'again' } }] }, { text: 'recovered' }],
    });
    expect(await bed.client.result(runId)).toMatchObject({ status: 'completed', text: 'recovered', toolCalls: 2 });
    // Two attempts (fastRetry), each reaching a fresh process, then the next call a third one.
    expect(stdioCalls().slice(before)).toEqual(['crash', 'crash', 'write_note again']);
    expect(await toolMessage(runId, 2)).toMatch(/^mcp:notes\/crash failed: MCP server "notes" \(.*\) is unreachable: .*Connection closed.*crashing on purpose/);
    expect(await toolMessage(runId, 4)).toBe('wrote again');
  });
});

describe('MCP tool sets', () => {
  test('the worker lists a server once: names, model names, risk from annotations, include/exclude, pinned digests', async () => {
    const http = await startHttpMcp();
    try {
      const registry = new AgentRegistry([defineAgent({ name: 'lister', instructions: 'x', model: 'scripted', tools: [defineMcpTools({ server: { name: 'srv', url: http.url }, exclude: ['secret_*'] })] })]);
      expect(() => registry.spec('lister')).toThrow(/not listed yet: await registry.resolveTools\(\) first/);
      await registry.resolveTools();
      const tools = registry.spec('lister').tools;
      expect(tools.map((t) => [t.name, t.modelName, t.risk])).toEqual([
        ['mcp:srv/write_note', 'mcp__srv__write_note', 'medium'],
        ['mcp:srv/drop_notes', 'mcp__srv__drop_notes', 'high'],
        ['mcp:srv/read_notes', 'mcp__srv__read_notes', 'low'],
        ['mcp:srv/create_ticket', 'mcp__srv__create_ticket', 'high'],
      ]);
      expect(tools[0]?.schemaDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(tools[0]?.inputSchema).toMatchObject({ type: 'object', required: ['text'] });
      expect([...registry.tools().keys()]).toContain('mcp:srv/write_note');
      await registry.close();
    } finally {
      await http.close();
    }
  });

  test('model names stay within what providers accept', () => {
    expect(mcpModelName('github', 'create_issue')).toBe('mcp__github__create_issue');
    expect(mcpModelName('docs', 'search.v2')).toBe('mcp__docs__search_v2');
    const long = mcpModelName('a-server-with-a-long-name', 'and_a_tool_with_an_even_longer_name_than_that');
    expect(long).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(long).not.toBe(mcpModelName('a-server-with-a-long-name', 'and_a_tool_with_an_even_longer_name_than_this'));
  });

  test('bad definitions and unreachable servers fail with the server named', async () => {
    expect(() => defineMcpTools({ server: { name: 'bad name', url: 'http://127.0.0.1:1/mcp' } })).toThrow(DefinitionError);
    expect(() => defineMcpTools({ server: { name: 'x', url: 'ftp://127.0.0.1/mcp' } })).toThrow(/must be http: or https:/);
    expect(() => defineMcpTools({ server: { name: 'x', url: 'http://127.0.0.1:1/mcp', command: 'node' } })).toThrow(/either command \(stdio\) or url/);
    const unreachable = defineMcpTools({ server: { name: 'nobody', url: 'http://127.0.0.1:9/mcp' }, connectTimeout: '5s' });
    await expect(unreachable.list()).rejects.toThrow(/cannot list the tools of MCP server "nobody" \(http:\/\/127\.0\.0\.1:9\/mcp\)|MCP server "nobody" .* is unreachable/);
    const http = await startHttpMcp();
    try {
      await expect(defineMcpTools({ server: { name: 'srv', url: http.url }, include: ['no_such_tool'] }).list()).rejects.toThrow(/has no tool matching include entry "no_such_tool"/);
    } finally {
      await http.close();
    }
  });
});

describe('policies name tools by prefix', () => {
  const run: RunFacts = { id: 'r', requester: 'carol', requesterVerified: false, step: 1, toolCalls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 };
  const policy = (input: Partial<PolicyInput>) => parsePolicy({ agent: 'a', ...input }, 'prefix test');

  test('a prefix lists every tool of a server; an exact entry wins over it for settings', () => {
    const compiled = new CompiledPolicy(
      policy({
        tools: { 'mcp:github/*': { maxCalls: 5 }, 'mcp:github/delete_repo': { maxCalls: 1 } },
        rules: [
          { id: 'no-deletes', tools: ['mcp:github/delete_*'], decision: 'deny' },
          { id: 'github', tools: ['mcp:github/*'], decision: 'allow' },
        ],
      }),
    );
    expect(compiled.decide({ tool: 'mcp:github/create_issue', args: {} }, 'a', run)).toMatchObject({ decision: 'allow', ruleId: 'github' });
    expect(compiled.decide({ tool: 'mcp:github/delete_repo', args: {} }, 'a', run)).toMatchObject({ decision: 'deny', ruleId: 'no-deletes' });
    expect(compiled.decide({ tool: 'mcp:gitlab/create_issue', args: {} }, 'a', run)).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
    // A prefix is a prefix of the whole name: mcp:github/* does not reach a server named github-enterprise.
    expect(compiled.decide({ tool: 'mcp:github-enterprise/create_issue', args: {} }, 'a', run)).toMatchObject({ decision: 'deny', ruleId: 'default:unknown-tool' });
    expect(compiled.toolPolicy('mcp:github/create_issue')?.maxCalls).toBe(5);
    expect(compiled.toolPolicy('mcp:github/delete_repo')?.maxCalls).toBe(1);
  });

  test('conditions read tool.name of an MCP tool; a rule without tools applies to prefixed tools too', () => {
    const compiled = new CompiledPolicy(
      policy({ tools: { 'mcp:*': {} }, rules: [{ id: 'only-github', when: 'tool.name.startsWith("mcp:github/")', decision: 'allow' }] }),
    );
    expect(compiled.decide({ tool: 'mcp:github/x', args: {} }, 'a', run).decision).toBe('allow');
    expect(compiled.decide({ tool: 'mcp:slack/x', args: {} }, 'a', run)).toMatchObject({ decision: 'deny', ruleId: 'default:no-match' });
  });

  test('bad names and rules that reach past the listed tools are refused at load', () => {
    const problem = (input: Partial<PolicyInput>) => {
      try {
        policy(input);
      } catch (err) {
        if (err instanceof PolicyError) return err.message;
        throw err;
      }
      throw new Error('expected a PolicyError');
    };
    expect(problem({ tools: { '*': {} } })).toContain('or a prefix ending in *');
    expect(problem({ tools: { 'mcp:github': {} } })).toContain('must be a tool name');
    expect(problem({ tools: { 'mcp:github/*': {} }, rules: [{ id: 'r', tools: ['mcp:gitlab/*'], decision: 'allow' }] })).toContain('tool "mcp:gitlab/*" is not listed under tools');
    expect(problem({ tools: { 'mcp:github/issues_*': {} }, rules: [{ id: 'r', tools: ['mcp:github/*'], decision: 'allow' }] })).toContain('tool "mcp:github/*" is not listed under tools');
    expect(() => policy({ tools: { 'mcp:*': {} }, rules: [{ id: 'r', tools: ['mcp:github/*', 'mcp:slack/post'], decision: 'allow' }] })).not.toThrow();
  });

  test('checkPolicy checks a prefix against the tools it matches', async () => {
    const http = await startHttpMcp();
    try {
      const set = defineMcpTools({ server: { name: 'srv', url: http.url }, include: ['write_note', 'create_ticket'] });
      const specs = (await set.list()).map(toolSpec);
      const parsed = policy({
        tools: { 'mcp:srv/*': {}, 'mcp:other/*': {} },
        rules: [{ id: 'short-notes', tools: ['mcp:srv/*'], when: 'args.text.size() < 10', decision: 'allow' }],
      });
      const problems = checkPolicy(parsed, specs);
      expect(problems.find((p) => p.path === 'tools["mcp:other/*"]')?.message).toContain('agent a has no tool matching "mcp:other/*"');
      // args.text exists for write_note but not for create_ticket, which the prefix also covers.
      const when = problems.filter((p) => p.path === 'rules[0].when');
      expect(when).toHaveLength(1);
      expect(when[0]).toMatchObject({ tools: ['mcp:srv/create_ticket'] });
      expect(when[0]?.message).toContain('args has no field "text"');
      await set.close();
    } finally {
      await http.close();
    }
  });
});
