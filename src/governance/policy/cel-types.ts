import type { CelType } from '@bufbuild/cel';

/**
 * The static type of a CEL expression as the policy checker sees it. It follows what the values
 * are at run time, not what a schema says in words: arguments arrive as JSON, so every JSON
 * number (even a schema's `integer`) is a CEL `double`, and every JSON object is a map.
 */
export type CelStaticType =
  | { kind: 'dyn' }
  /** `values`: the only strings it can be (a JSON Schema `enum` or `const`), when known. */
  | { kind: 'prim'; name: PrimName; values?: readonly string[] }
  | { kind: 'list'; elem: CelStaticType }
  | { kind: 'map'; value: CelStaticType }
  /** A map whose keys are known: `args` from a tool's schema, `run`, `tool`. `rest` types other keys; absent, there are none. */
  | { kind: 'record'; fields: ReadonlyMap<string, CelStaticType>; rest?: CelStaticType }
  | { kind: 'wkt'; name: 'google.protobuf.Timestamp' | 'google.protobuf.Duration' };

export type PrimName = 'bool' | 'int' | 'uint' | 'double' | 'string' | 'bytes' | 'null_type' | 'type';

export const DYN: CelStaticType = { kind: 'dyn' };
export const prim = (name: PrimName, values?: readonly string[]): CelStaticType => (values ? { kind: 'prim', name, values } : { kind: 'prim', name });
export const record = (fields: Record<string, CelStaticType>, rest?: CelStaticType): CelStaticType =>
  rest ? { kind: 'record', fields: new Map(Object.entries(fields)), rest } : { kind: 'record', fields: new Map(Object.entries(fields)) };

/** How a type reads in a message: "a number", "a string", "a list". */
export function describeType(t: CelStaticType): string {
  switch (t.kind) {
    case 'dyn':
      return 'any value';
    case 'list':
      return 'a list';
    case 'map':
    case 'record':
      return 'a map';
    case 'wkt':
      return t.name === 'google.protobuf.Timestamp' ? 'a timestamp' : 'a duration';
    case 'prim':
      return {
        bool: 'a bool',
        int: 'an int',
        uint: 'a uint',
        double: 'a number',
        string: 'a string',
        bytes: 'bytes',
        null_type: 'null',
        type: 'a type',
      }[t.name];
  }
}

/** Which values can be equal at all: CEL compares numbers across int, uint and double, nothing else across kinds. */
function family(t: CelStaticType): string | undefined {
  if (t.kind === 'dyn') return undefined;
  if (t.kind === 'prim') {
    if (t.name === 'null_type') return undefined;
    return t.name === 'int' || t.name === 'uint' || t.name === 'double' ? 'number' : t.name;
  }
  if (t.kind === 'record') return 'map';
  return t.kind === 'wkt' ? t.name : t.kind;
}

/**
 * Whether `a == b` can ever be true. Unknown types and null (an optional field may be compared
 * with null) always can.
 */
export function comparable(a: CelStaticType, b: CelStaticType): boolean {
  const fa = family(a);
  const fb = family(b);
  return fa === undefined || fb === undefined || fa === fb;
}

/** The type of "either of these" (the two branches of `?:`, the elements of a list literal). */
export function join(a: CelStaticType, b: CelStaticType): CelStaticType {
  if (a.kind === 'prim' && b.kind === 'prim' && a.name === b.name) {
    return a.values && b.values ? prim(a.name, [...new Set([...a.values, ...b.values])]) : prim(a.name);
  }
  if (a.kind === 'list' && b.kind === 'list') return { kind: 'list', elem: join(a.elem, b.elem) };
  if (a.kind === 'wkt' && b.kind === 'wkt' && a.name === b.name) return a;
  if (a.kind === 'record' && b.kind === 'record') {
    const fields = new Map(a.fields);
    for (const [k, v] of b.fields) fields.set(k, fields.has(k) ? join(fields.get(k) ?? DYN, v) : v);
    const rest = a.rest && b.rest ? join(a.rest, b.rest) : (a.rest ?? b.rest);
    return rest ? { kind: 'record', fields, rest } : { kind: 'record', fields };
  }
  if ((a.kind === 'map' || a.kind === 'record') && (b.kind === 'map' || b.kind === 'record')) return { kind: 'map', value: DYN };
  return DYN;
}

/** Whether a value of type `arg` can be passed where a function of the CEL library declares `param`. */
export function assignable(param: CelType, arg: CelStaticType): boolean {
  if (arg.kind === 'dyn') return true;
  switch (param.kind) {
    case 'scalar':
      return param.name === 'dyn' || (arg.kind === 'prim' && arg.name === param.name);
    case 'list':
      return arg.kind === 'list';
    case 'map':
      return arg.kind === 'map' || arg.kind === 'record';
    case 'object':
      return arg.kind === 'wkt' && arg.name === param.name;
  }
}

/** The checker's type for a result type the CEL library declares. */
export function fromCelType(t: CelType): CelStaticType {
  switch (t.kind) {
    case 'scalar':
      return t.name === 'dyn' ? DYN : prim(t.name);
    case 'list':
      return { kind: 'list', elem: fromCelType(t.element) };
    case 'map':
      return { kind: 'map', value: fromCelType(t.value) };
    case 'object':
      return t.name === 'google.protobuf.Timestamp' || t.name === 'google.protobuf.Duration' ? { kind: 'wkt', name: t.name } : DYN;
  }
}

type JsonSchema = Record<string, unknown>;

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolveRef(root: JsonSchema, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const segment = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = isSchema(node) ? node[segment] : undefined;
  }
  return node;
}

function ofConstants(values: readonly unknown[]): CelStaticType {
  if (values.length > 0 && values.every((v) => typeof v === 'string')) return prim('string', values);
  if (values.length > 0 && values.every((v) => typeof v === 'number')) return prim('double');
  if (values.length > 0 && values.every((v) => typeof v === 'boolean')) return prim('bool');
  return DYN;
}

function ofTypeName(name: unknown, schema: JsonSchema, root: JsonSchema, seen: ReadonlySet<string>): CelStaticType {
  switch (name) {
    case 'string':
      return Array.isArray(schema.enum) ? ofConstants(schema.enum) : prim('string');
    case 'number':
    case 'integer':
      return prim('double');
    case 'boolean':
      return prim('bool');
    case 'null':
      return prim('null_type');
    case 'array':
      return { kind: 'list', elem: isSchema(schema.items) ? fromJsonSchema(schema.items, root, seen) : DYN };
    case 'object':
      return ofObject(schema, root, seen);
    default:
      return DYN;
  }
}

function ofObject(schema: JsonSchema, root: JsonSchema, seen: ReadonlySet<string>): CelStaticType {
  const extra = schema.additionalProperties;
  // Extra keys are typed only when the schema says so (`true` or a schema). zod writes no
  // `additionalProperties` for a plain z.object, whose parse drops unknown keys: a condition on a
  // field the schema does not declare is a typo, not a field that might be there.
  const rest = extra === true ? DYN : isSchema(extra) ? fromJsonSchema(extra, root, seen) : undefined;
  if (!isSchema(schema.properties)) return rest ? { kind: 'map', value: rest } : { kind: 'map', value: DYN };
  const fields: Record<string, CelStaticType> = {};
  for (const [name, sub] of Object.entries(schema.properties)) fields[name] = fromJsonSchema(sub, root, seen);
  return record(fields, rest);
}

function ofAlternatives(options: readonly unknown[], root: JsonSchema, seen: ReadonlySet<string>): CelStaticType {
  // A nullable field is compared with null or used as its type; null adds nothing to check.
  const types = options.map((o) => fromJsonSchema(o, root, seen)).filter((t) => !(t.kind === 'prim' && t.name === 'null_type'));
  const [first, ...rest] = types;
  if (!first) return prim('null_type');
  return rest.reduce(join, first);
}

/**
 * The CEL type of values that satisfy a JSON Schema (as `z.toJSONSchema` writes a tool's input).
 * Anything it cannot express (`{}`, `not`, a recursive `$ref`) is `dyn`: unchecked, never wrong.
 */
export function fromJsonSchema(schema: unknown, root: JsonSchema = isSchema(schema) ? schema : {}, seen: ReadonlySet<string> = new Set()): CelStaticType {
  if (!isSchema(schema)) return DYN;
  if (typeof schema.$ref === 'string') {
    if (seen.has(schema.$ref)) return DYN;
    return fromJsonSchema(resolveRef(root, schema.$ref), root, new Set([...seen, schema.$ref]));
  }
  if ('const' in schema) return ofConstants([schema.const]);
  if (Array.isArray(schema.anyOf)) return ofAlternatives(schema.anyOf, root, seen);
  if (Array.isArray(schema.oneOf)) return ofAlternatives(schema.oneOf, root, seen);
  if (Array.isArray(schema.allOf)) return schema.allOf.length === 1 ? fromJsonSchema(schema.allOf[0], root, seen) : DYN;
  if (Array.isArray(schema.type)) return ofAlternatives(schema.type.map((name: unknown) => ({ ...schema, type: name })), root, seen);
  if (schema.type !== undefined) return ofTypeName(schema.type, schema, root, seen);
  if (Array.isArray(schema.enum)) return ofConstants(schema.enum);
  if (isSchema(schema.properties)) return ofObject(schema, root, seen);
  return DYN;
}
