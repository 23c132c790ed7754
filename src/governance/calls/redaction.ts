/** The placeholder that replaces a sensitive value. */
export const REDACTED = '[redacted]';

/**
 * Paths of fields marked `sensitive: true` in a JSON Schema (zod: `.meta({ sensitive: true })`).
 * Nested objects use dots, array items `[]`: `card.number`, `items[].secret`.
 *
 * @deprecated It sees only `properties`, `items`, `anyOf` and `oneOf`, so it misses records, tuples,
 * `$ref`, `allOf` and keys that contain dots; use {@link redactBySchema}.
 */
export function sensitivePaths(schema: unknown, prefix = ''): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  const node = schema as { sensitive?: unknown; properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[]; oneOf?: unknown[] };
  if (node.sensitive === true && prefix) return [prefix];
  const out: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) out.push(...sensitivePaths(child, prefix ? `${prefix}.${key}` : key));
  if (node.items) out.push(...sensitivePaths(node.items, `${prefix}[]`));
  for (const alt of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) out.push(...sensitivePaths(alt, prefix));
  return [...new Set(out)];
}

/**
 * A copy of `args` with the values at `paths` (from {@link sensitivePaths}) replaced by `[redacted]`.
 *
 * @deprecated Paths cannot name every place a schema marks sensitive; use {@link redactBySchema}.
 */
export function redactArgs(args: Record<string, unknown>, paths: readonly string[]): Record<string, unknown> {
  if (paths.length === 0) return args;
  const copy = JSON.parse(JSON.stringify(args)) as Record<string, unknown>;
  for (const path of paths) redactPath(copy, path.split('.'));
  return copy;
}

function redactPath(target: unknown, parts: string[]): void {
  const [head, ...rest] = parts;
  if (head === undefined || typeof target !== 'object' || target === null) return;
  const isArray = head.endsWith('[]');
  const key = isArray ? head.slice(0, -2) : head;
  const container = target as Record<string, unknown>;
  const value = key === '' ? target : container[key];
  if (value === undefined) return;
  if (isArray) {
    if (!Array.isArray(value)) return;
    if (rest.length === 0) {
      value.forEach((_, i) => (value[i] = REDACTED));
      return;
    }
    for (const item of value) redactPath(item, rest);
    return;
  }
  if (rest.length === 0) container[key] = REDACTED;
  else redactPath(value, rest);
}

/**
 * The schema to redact a tool's parsed arguments by: the output side (`argsSchema`) when the tool
 * reshapes its arguments with a pipe or transform, else its input schema; undefined for no tool,
 * which `redactBySchema` answers by redacting everything.
 */
export function argsSchemaOf(tool: { inputSchema: Record<string, unknown>; argsSchema?: Record<string, unknown> } | undefined): Record<string, unknown> | undefined {
  return tool === undefined ? undefined : (tool.argsSchema ?? tool.inputSchema);
}

/**
 * A deep copy of `value` in which every value that `schema` marks `sensitive: true` (zod:
 * `.meta({ sensitive: true })`, converted with `z.toJSONSchema`) is replaced by {@link REDACTED}.
 * Use it wherever tool arguments leave the run for people: approval requests, notifications,
 * queries, the CLI. It walks the value alongside the schema, so records, tuples, arrays at any
 * depth, `$ref` and `allOf`/`anyOf`/`oneOf` are all covered, and a sensitive object or array is
 * replaced whole.
 *
 * It fails closed: with no schema (a call to a tool the agent does not have) the whole value is
 * redacted; a field is redacted if any alternative of an `anyOf`/`oneOf` (or any branch of
 * `if`/`then`/`else`) marks it; a `$ref` that cannot be resolved redacts the value it describes; an
 * object whose keys are marked sensitive (`propertyNames`, zod: a record with a sensitive key
 * schema) is redacted whole. Values the schema does not describe at all are copied unchanged.
 */
export function redactBySchema(value: unknown, schema: Record<string, unknown> | undefined): unknown {
  if (schema === undefined) return REDACTED;
  return redactValue(value, [schema], schema, new Set());
}

type SchemaNode = Record<string, unknown>;

function isNode(schema: unknown): schema is SchemaNode {
  return typeof schema === 'object' && schema !== null && !Array.isArray(schema);
}

function own(container: unknown, key: string): unknown {
  if (typeof container !== 'object' || container === null || !Object.hasOwn(container, key)) return undefined;
  return (container as Record<string, unknown>)[key];
}

function redactValue(value: unknown, schemas: readonly unknown[], root: SchemaNode, ancestors: Set<object>): unknown {
  const applied = applicable(schemas, root);
  if (applied === 'unresolved' || applied.some((node) => node.sensitive === true)) return REDACTED;
  if (typeof value !== 'object' || value === null) return value;
  // Arguments are JSON, so a cycle is not expected; showing nothing of it is the safe answer.
  if (ancestors.has(value)) return REDACTED;
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((item: unknown, i) => redactValue(item, applied.flatMap((node) => itemSchemas(node, i)), root, ancestors));
    }
    const keySchemas = applied.flatMap((node) => (node.propertyNames === undefined ? [] : [node.propertyNames]));
    if (keySchemas.length > 0) {
      const keys = applicable(keySchemas, root);
      if (keys === 'unresolved' || keys.some((node) => node.sensitive === true)) return REDACTED;
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const redacted = redactValue(item, applied.flatMap((node) => propertySchemas(node, key)), root, ancestors);
      // defineProperty, not assignment: an own `__proto__` key must stay a key of the copy.
      Object.defineProperty(out, key, { value: redacted, enumerable: true, writable: true, configurable: true });
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

/**
 * Every schema object that applies to one value: the given ones, what their `$ref`s point to, and
 * their `allOf`/`anyOf`/`oneOf`/`if`/`then`/`else`/`dependentSchemas` subschemas, all of them,
 * because a mark in any branch must redact. `seen` stops `$ref` cycles.
 */
function applicable(schemas: readonly unknown[], root: SchemaNode): SchemaNode[] | 'unresolved' {
  const nodes: SchemaNode[] = [];
  const seen = new Set<SchemaNode>();
  const pending = [...schemas];
  while (pending.length > 0) {
    const schema = pending.pop();
    // Boolean schemas (`true`: anything, `false`: nothing) carry no marks.
    if (!isNode(schema) || seen.has(schema)) continue;
    seen.add(schema);
    nodes.push(schema);
    for (const keyword of ['$ref', '$dynamicRef', '$recursiveRef']) {
      const ref = schema[keyword];
      if (typeof ref !== 'string') continue;
      const target = resolveRef(root, ref);
      if (target === undefined) return 'unresolved';
      pending.push(target);
    }
    for (const keyword of ['allOf', 'anyOf', 'oneOf']) {
      const branches = schema[keyword];
      if (Array.isArray(branches)) pending.push(...(branches as unknown[]));
    }
    pending.push(schema.if, schema.then, schema.else);
    if (isNode(schema.dependentSchemas)) pending.push(...Object.values(schema.dependentSchemas));
  }
  return nodes;
}

/** The schema a local reference points to: `#`, or a JSON Pointer such as `#/$defs/Card` or `#/definitions/Card`. */
function resolveRef(root: SchemaNode, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let target: unknown = root;
  for (const encoded of ref.slice(2).split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(encoded);
    } catch {
      return undefined;
    }
    target = own(target, segment.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (target === undefined) return undefined;
  }
  return target;
}

/** The subschemas that describe item `index` of an array under `node`. */
function itemSchemas(node: SchemaNode, index: number): unknown[] {
  const out: unknown[] = [];
  const { prefixItems, items } = node;
  if (Array.isArray(prefixItems)) {
    // 2020-12 tuples: `prefixItems` by position, `items` for the rest.
    if (index < prefixItems.length) out.push(prefixItems[index]);
    else if (items !== undefined) out.push(items);
  } else if (Array.isArray(items)) {
    // Draft-07 tuples: `items` by position, `additionalItems` for the rest.
    if (index < items.length) out.push(items[index]);
    else if (node.additionalItems !== undefined) out.push(node.additionalItems);
  } else if (items !== undefined) {
    out.push(items);
  }
  // `contains` and `unevaluatedItems` may apply to any item; taking them always can only redact more.
  if (node.contains !== undefined) out.push(node.contains);
  if (node.unevaluatedItems !== undefined) out.push(node.unevaluatedItems);
  return out;
}

/** The subschemas that describe member `key` of an object under `node`. */
function propertySchemas(node: SchemaNode, key: string): unknown[] {
  const out: unknown[] = [];
  let described = false;
  if (isNode(node.properties) && Object.hasOwn(node.properties, key)) {
    out.push(node.properties[key]);
    described = true;
  }
  if (isNode(node.patternProperties)) {
    for (const [pattern, schema] of Object.entries(node.patternProperties)) {
      if (matches(pattern, key)) {
        out.push(schema);
        described = true;
      }
    }
  }
  if (!described && node.additionalProperties !== undefined) out.push(node.additionalProperties);
  // Like `unevaluatedItems`: taken always, which can only redact more.
  if (node.unevaluatedProperties !== undefined) out.push(node.unevaluatedProperties);
  return out;
}

function matches(pattern: string, key: string): boolean {
  for (const flags of ['u', '']) {
    try {
      return new RegExp(pattern, flags).test(key);
    } catch {
      // Not valid with these flags; try the next.
    }
  }
  // A pattern we cannot read might match: treat it as matching, so its marks still redact.
  return true;
}
