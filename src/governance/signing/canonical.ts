// canonicalize is ESM-only. tsc's node16 mode refuses a CommonJS file that requires an ES module,
// but everything that loads this file can: tsx, Node >= 20.19 (require(esm)), the workflow bundler
// (webpack) and jest (jest.config.js lets swc compile this one package to CommonJS).
// @ts-expect-error TS1479: CommonJS importing an ES module, see above
import canonicalize from 'canonicalize';

/**
 * Canonical JSON after RFC 8785 (JCS): object keys sorted by UTF-16 code units, no insignificant
 * white space, numbers and strings as ECMAScript serialises them. Two values that mean the same
 * produce the same string, so their digests match; two values that differ produce different strings
 * (an own `__proto__` key, which `JSON.parse` creates, is data like any other key).
 * Use it for anything that is hashed or compared (approval ids, loop detection, policy versions,
 * the audit chain). It is meant for plain JSON data; class instances are read by their own
 * enumerable properties and their `toJSON` is not called.
 *
 * Where RFC 8785 would refuse a value, this maps it instead, so that workflow code never throws
 * on what a model produced:
 * - `undefined` (and functions, symbols) as object members are dropped, as array items become `null`;
 * - `NaN` and `±Infinity` become `null`;
 * - a lone surrogate in a string or key becomes U+FFFD, as a UTF-8 encoder would write it.
 * A cyclic value throws a `TypeError`.
 */
export function canonicalJson(value: unknown): string {
  // canonicalize returns undefined for a top-level undefined; JSON has no such value.
  return canonicalize(toJsonData(value, new Set())) ?? 'null';
}

// Unpaired surrogates: RFC 8785 (via I-JSON) has no encoding for them.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

/** A copy of `value` that RFC 8785 accepts, built with defineProperty so an own `__proto__` survives. */
function toJsonData(value: unknown, ancestors: Set<object>): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string') return wellFormed(value);
  if (value === null || typeof value !== 'object') return value;
  if (ancestors.has(value)) throw new TypeError('canonicalJson: the value contains a cycle, which JSON cannot represent');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const items: unknown[] = [];
      for (let i = 0; i < value.length; i++) {
        const item = toJsonData(value[i], ancestors);
        items.push(item === undefined || typeof item === 'function' || typeof item === 'symbol' ? null : item);
      }
      return items;
    }
    const out: Record<string, unknown> = {};
    // Sorted first, so that when two keys with lone surrogates map to the same key the winner does
    // not depend on insertion order.
    for (const key of Object.keys(value).sort()) {
      const item = toJsonData((value as Record<string, unknown>)[key], ancestors);
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      Object.defineProperty(out, wellFormed(key), { value: item, enumerable: true, writable: true, configurable: true });
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}
