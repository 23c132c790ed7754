/** The placeholder that replaces a sensitive value. */
export const REDACTED = '[redacted]';

/**
 * Paths of fields marked `sensitive: true` in a JSON Schema (zod: `.meta({ sensitive: true })`).
 * Nested objects use dots, array items `[]`: `card.number`, `items[].secret`.
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

/** A copy of `args` with the values at `paths` replaced by `[redacted]`. */
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
