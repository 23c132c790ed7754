export { defineTool, defineAgent, ToolError, DefinitionError, modelIdOf, isAgent } from './define';
export type { Tool, AnyTool, ToolOptions, ToolContext, ToolRisk, Agent, AgentOptions, ContextPolicy, ModelSpec } from './define';
export { loadAgents, loadPolicies, loadFleetPolicy, isFleetFile, FLEET_FILES, toolSpec, AgentRegistry, RESERVED_ACTIVITY_NAMES } from './registry';
export type { PolicyEntry } from './registry';
export { defineMcpTools, isMcpTools, mcpModelName, mcpToolName, mcpSchemaDigest } from './mcp';
export type { McpTools, McpToolsOptions, McpServer, McpStdioServer, McpHttpServer } from './mcp';
