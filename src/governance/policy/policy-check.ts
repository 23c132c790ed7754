import { parse } from '@bufbuild/cel';
import { checkCel, type CelProblem } from './cel-check';
import { describeType, DYN, fromJsonSchema, prim, record, type CelStaticType } from './cel-types';
import { PolicySourceMap, type SourcePosition } from './policy-location';
import { formatPolicyPath, type PolicyProblem } from './policy-problem';
import type { Policy } from './policy-schema';
import { isToolPrefix, toolMatches } from './policy-tools';

/** A tool as the checker needs it: its name and the JSON Schema of its input (`ToolSpec` fits). */
export interface ToolSchemaInfo {
  name: string;
  inputSchema: Record<string, unknown>;
}

const TOOL_RISKS = ['low', 'medium', 'high'];

/** `run.*` as `CompiledPolicy.decide` binds it. Every number is a JS number, so a CEL double. */
const RUN_TYPE = record({
  id: prim('string'),
  requester: prim('string'),
  requesterVerified: prim('bool'),
  tenant: prim('string'),
  step: prim('double'),
  toolCalls: prim('double'),
  costUsd: prim('double'),
  inputTokens: prim('double'),
  outputTokens: prim('double'),
});

function variables(args: CelStaticType): Map<string, CelStaticType> {
  return new Map<string, CelStaticType>([
    ['args', args],
    ['agent', prim('string')],
    ['tool', record({ name: prim('string'), risk: prim('string', TOOL_RISKS) })],
    ['run', RUN_TYPE],
  ]);
}

type ParsedCondition = ReturnType<typeof parse>;

/** Problems of one condition with these declarations, including a result that is not a bool. */
function conditionProblems(parsed: ParsedCondition, vars: ReadonlyMap<string, CelStaticType>): CelProblem[] {
  const { type, problems } = checkCel(parsed, vars);
  if (type.kind !== 'dyn' && !(type.kind === 'prim' && type.name === 'bool')) {
    problems.push({ kind: 'type', offset: 0, message: `the condition is ${describeType(type)}, not a bool: the rule never matches` });
  }
  return problems;
}

const keyOf = (p: CelProblem) => `${p.offset}\u0000${p.kind}\u0000${p.message}`;

/**
 * Checks what the schema cannot: that every tool the policy lists exists, and that every `when`
 * condition can evaluate against the arguments of the tools its rule applies to. Pure; use it in
 * `warden policy check --agents`, when a worker loads policy files, and in tests.
 *
 * `tools` are the agent's tools with their input schemas; `undefined` when they are not known
 * (then `args` is unchecked, and only names, `run`, `tool`, `agent` and operators are). A rule
 * with `tools` is checked against each of them; a rule without, against every tool the policy
 * lists: a field then counts as missing only if no such tool has it, while a type mismatch counts
 * for each tool it occurs with. `text` is the YAML or JSON the policy was read from; with it,
 * problems carry their line and column.
 */
export function checkPolicy(policy: Policy, tools: readonly ToolSchemaInfo[] | undefined, text?: string): PolicyProblem[] {
  const map = text === undefined ? undefined : new PolicySourceMap(text);
  const at = (position: SourcePosition | undefined) => (position ? { line: position.line, column: position.column } : {});
  const problems: PolicyProblem[] = [];
  const byName = tools ? new Map(tools.map((t) => [t.name, t])) : undefined;

  if (byName) {
    for (const name of Object.keys(policy.tools)) {
      const prefix = isToolPrefix(name);
      if (prefix ? [...byName.keys()].some((tool) => toolMatches(name, tool)) : byName.has(name)) continue;
      const path = ['tools', name];
      const has = [...byName.keys()];
      const what = prefix ? `no tool matching "${name}"` : `no tool "${name}"`;
      problems.push({ path: formatPolicyPath(path), message: `agent ${policy.agent} has ${what} (${has.length > 0 ? `its tools: ${has.join(', ')}` : 'it has no tools'})`, ...at(map?.positionOf(path, 'key')) });
    }
  }

  const argsTypes = new Map<string, CelStaticType>();
  const argsOf = (tool: ToolSchemaInfo) => {
    let type = argsTypes.get(tool.name);
    if (!type) argsTypes.set(tool.name, (type = fromJsonSchema(tool.inputSchema)));
    return type;
  };

  policy.rules.forEach((rule, index) => {
    if (rule.when === undefined) return;
    const path = ['rules', index, 'when'];
    const push = (offset: number, message: string, extra: Partial<PolicyProblem> = {}) =>
      problems.push({ path: formatPolicyPath(path), rule: index, message, ...extra, ...at(map?.positionInString(path, offset)) });

    let parsed: ParsedCondition;
    try {
      parsed = parse(rule.when);
    } catch (err) {
      // parsePolicy refuses these already; a policy built by hand may still carry one.
      const offset = (err as { location?: { start?: { offset?: number } } }).location?.start?.offset ?? 0;
      push(offset, `CEL syntax error: ${(err as { rawMessage?: string }).rawMessage ?? String(err)}`);
      return;
    }

    // Problems that do not depend on any tool's arguments are reported once.
    const baseline = conditionProblems(parsed, variables(DYN));
    for (const p of baseline) push(p.offset, p.detail ? `${p.message} (it ${p.detail})` : p.message);
    const seen = new Set(baseline.map(keyOf));

    // A prefix stands for every tool of the agent it matches.
    const entries = rule.tools ?? Object.keys(policy.tools);
    const targets = [
      ...new Set(
        entries.flatMap((entry) => {
          if (!byName) return [];
          if (isToolPrefix(entry)) return [...byName.values()].filter((tool) => toolMatches(entry, tool.name));
          const tool = byName.get(entry);
          return tool ? [tool] : [];
        }),
      ),
    ];
    const groups = new Map<string, { problem: CelProblem; tools: string[]; details: string[] }>();
    for (const tool of targets) {
      for (const p of conditionProblems(parsed, variables(argsOf(tool)))) {
        const key = keyOf(p);
        if (seen.has(key)) continue;
        const group = groups.get(key) ?? { problem: p, tools: [], details: [] };
        group.tools.push(tool.name);
        if (p.detail) group.details.push(`${tool.name} ${p.detail}`);
        groups.set(key, group);
      }
    }
    for (const { problem, tools: affected, details } of groups.values()) {
      // A rule for every tool may read a field that only some of them have; it is a typo only if none has it.
      if (problem.kind === 'unknown-field' && rule.tools === undefined && affected.length < targets.length) continue;
      const which = details.length > 0 ? details.join('; ') : `for ${affected.join(', ')}`;
      push(problem.offset, `${problem.message} (${which})`, { tools: affected });
    }
  });
  return problems;
}
