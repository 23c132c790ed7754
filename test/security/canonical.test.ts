import { canonicalJson, digestOf, emptyAuditHead, nextAuditEvent, verifyAuditChain, type AuditEvent } from '../../src/governance';

/** The implementation canonicalJson had before RFC 8785: kept here to prove ordinary output did not change. */
function oldCanonicalJson(value: unknown): string {
  return JSON.stringify(oldSortKeys(value)) ?? 'null';
}

function oldSortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : oldSortKeys(v)));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = oldSortKeys(v);
    }
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

describe('canonicalJson', () => {
  it('gives the same bytes as before for ordinary JSON data', () => {
    const values: unknown[] = [
      null,
      true,
      0,
      -12.5,
      'plain',
      'quote " backslash \\ newline \n tab \t control \u0001 euro € emoji 😀',
      [],
      {},
      { b: 2, a: 1, c: { z: [3, 2, 1], y: null, x: 'x' } },
      { tool: 'refund', args: { orderId: 'ORD-1001', amount: 25, items: [{ sku: 'A', qty: 1 }], note: undefined } },
      [1, undefined, 'two', { k: undefined, j: false }],
      { NaN: Number.NaN, inf: Number.POSITIVE_INFINITY, list: [Number.NEGATIVE_INFINITY] },
      { Zebra: 1, apple: 2, _under: 3, 'a-b': 4, 'a.b': 5, ä: 6 },
      { at: '2026-01-01T00:00:00.000Z', seq: 7, type: 'policy_decision', data: { decision: 'allow', rule: 'r1' }, prevHash: '0'.repeat(64) },
      undefined,
    ];
    for (const value of values) expect(canonicalJson(value)).toBe(oldCanonicalJson(value));
  });

  it('keeps an own __proto__ key, so it changes the digest', () => {
    const withProto = JSON.parse('{"__proto__":{"x":1},"a":1}') as unknown;
    expect(canonicalJson(withProto)).toBe('{"__proto__":{"x":1},"a":1}');
    expect(digestOf(withProto)).not.toBe(digestOf({ a: 1 }));
    // The bug this fixes: the old implementation dropped it.
    expect(oldCanonicalJson(withProto)).toBe('{"a":1}');
  });

  it('keeps a nested own __proto__ key too', () => {
    const nested = JSON.parse('{"args":{"__proto__":{"admin":true},"amount":5}}') as unknown;
    expect(canonicalJson(nested)).toBe('{"args":{"__proto__":{"admin":true},"amount":5}}');
  });

  it('sorts keys by UTF-16 code units (RFC 8785 section 3.2.3)', () => {
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    expect(canonicalJson(value)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",' +
        '"\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('orders integer-like keys as strings, as RFC 8785 says (the old implementation put them first)', () => {
    expect(canonicalJson({ b: 1, '10': 2, '9': 3 })).toBe('{"10":2,"9":3,"b":1}');
    expect(oldCanonicalJson({ b: 1, '10': 2, '9': 3 })).toBe('{"9":3,"10":2,"b":1}');
  });

  it('formats numbers as RFC 8785 does (ECMAScript Number serialisation)', () => {
    expect(canonicalJson(1e21)).toBe('1e+21');
    expect(canonicalJson(1e30)).toBe('1e+30');
    expect(canonicalJson(0.000001)).toBe('0.000001');
    expect(canonicalJson(1e-7)).toBe('1e-7');
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(4.5)).toBe('4.5');
    expect(canonicalJson(2e-3)).toBe('0.002');
    // Parsed from text: the literal itself does not fit a double, which is the point of the vector.
    expect(canonicalJson(Number('333333333.33333329'))).toBe('333333333.3333333');
    expect(canonicalJson(9007199254740992)).toBe('9007199254740992');
  });

  it('reproduces the RFC 8785 section 3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('maps what RFC 8785 refuses instead of throwing: non-finite numbers, undefined, lone surrogates', () => {
    expect(canonicalJson({ a: Number.NaN, b: [Number.POSITIVE_INFINITY, undefined], c: undefined })).toBe('{"a":null,"b":[null,null]}');
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson({ ['\ud800']: 'lone \udc00 low' })).toBe('{"\ufffd":"lone \ufffd low"}');
    expect(canonicalJson('pair \ud83d\ude00 kept')).toBe('"pair 😀 kept"');
  });

  it('refuses a cyclic value with a TypeError that says so', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cycle/);
    // The same object twice, side by side, is no cycle.
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, ab: shared })).toBe('{"a":{"x":1},"ab":{"x":1}}');
  });
});

describe('audit chain and __proto__', () => {
  const at = '2026-01-01T00:00:00.000Z';

  it('detects an own __proto__ key added to an event after it was hashed', () => {
    const event = nextAuditEvent(emptyAuditHead(), 'policy_decision', { decision: 'allow', rule: 'r1' }, at);
    expect(verifyAuditChain([event]).ok).toBe(true);

    // What a tampered store row looks like once JSON.parse has read it back.
    const tamperedData = JSON.parse('{"__proto__":{"approvedBy":"mallory"},' + JSON.stringify(event.data).slice(1)) as Record<string, unknown>;
    expect(Object.hasOwn(tamperedData, '__proto__')).toBe(true);
    const tampered: AuditEvent = { ...event, data: tamperedData };

    expect(verifyAuditChain([tampered])).toEqual({ ok: false, seq: 1, reason: expect.stringContaining('altered') as unknown });
    // The old implementation saw no difference: the extra data rode along undetected.
    expect(oldCanonicalJson(tamperedData)).toBe(oldCanonicalJson(event.data));
  });

  it('hashes an own __proto__ key that was there from the start, and the chain verifies', () => {
    const data = JSON.parse('{"__proto__":{"x":1},"a":1}') as Record<string, unknown>;
    const withProto = nextAuditEvent(emptyAuditHead(), 'model_turn', data, at);
    const without = nextAuditEvent(emptyAuditHead(), 'model_turn', { a: 1 }, at);
    expect(Object.hasOwn(withProto.data, '__proto__')).toBe(true);
    expect(withProto.hash).not.toBe(without.hash);
    expect(verifyAuditChain([withProto]).ok).toBe(true);
  });
});
