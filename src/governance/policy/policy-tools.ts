/**
 * How a policy names tools: by name (`issue_refund`, `mcp:github/create_issue`) or by prefix
 * (`mcp:github/*`, every tool of one MCP server). Pure; the schema, the evaluator and the checker
 * all match names through these functions.
 */

/** An MCP server's name as it appears in its tools' names (`mcp:<server>/<tool>`). */
export const MCP_SERVER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/;

/** A tool's name as an MCP server gives it (the MCP specification's characters: letters, digits, `_`, `-`, `.`). */
export const MCP_TOOL_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

/**
 * A tool name: a tool defined with `defineTool`, an MCP server's tool (`mcp:<server>/<tool>`), or
 * a delegation to another agent (`agent:<agent name>`, from `defineAgent({ delegates })`).
 */
export const TOOL_NAME = /^(?:[a-zA-Z][a-zA-Z0-9_-]{0,63}|mcp:[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}\/[a-zA-Z0-9_.-]{1,128}|agent:[a-z0-9][a-z0-9-]{0,62})$/;

/** The tool name a delegation to an agent goes by in policies and the audit trail. */
export function delegationToolName(agent: string): string {
  return `agent:${agent}`;
}

/** A prefix that ends in `*`: `mcp:github/*` (one server), `mcp:*` (every MCP tool), `lookup_*`. */
export const TOOL_PREFIX = /^[a-zA-Z][a-zA-Z0-9_.:/-]{0,190}\*$/;

/** Whether a policy entry names tools by prefix. */
export function isToolPrefix(entry: string): boolean {
  return entry.endsWith('*');
}

/** Whether a policy entry (a name, or a prefix ending in `*`) names this tool. */
export function toolMatches(entry: string, tool: string): boolean {
  return isToolPrefix(entry) ? tool.startsWith(entry.slice(0, -1)) : entry === tool;
}

/**
 * The entry of a policy's `tools` that governs a tool: its own name if listed, otherwise the
 * longest prefix that matches it (so `mcp:github/create_issue` beats `mcp:github/*`, which beats `mcp:*`).
 */
export function toolEntryFor<T>(tools: Readonly<Record<string, T>>, tool: string): { key: string; value: T } | undefined {
  if (Object.prototype.hasOwnProperty.call(tools, tool)) return { key: tool, value: tools[tool] as T };
  let best: string | undefined;
  for (const key of Object.keys(tools)) {
    if (isToolPrefix(key) && toolMatches(key, tool) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : { key: best, value: tools[best] as T };
}

/**
 * Whether a rule's tool entry stays inside what `tools` lists: a name must be governed by some
 * entry; a prefix must be listed itself or lie within a listed prefix (`mcp:github/*` lies
 * within `mcp:*`), so a rule can never reach a tool the policy does not list.
 */
export function entryCovered(keys: readonly string[], entry: string): boolean {
  if (!isToolPrefix(entry)) return keys.some((key) => toolMatches(key, entry));
  const prefix = entry.slice(0, -1);
  return keys.some((key) => key === entry || (isToolPrefix(key) && prefix.startsWith(key.slice(0, -1))));
}
