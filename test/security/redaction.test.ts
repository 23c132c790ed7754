import { z } from 'zod';
import { defineTool } from '../../src/agents';
import { toolSpec } from '../../src/agents/registry';
import { REDACTED, argsSchemaOf, redactArgs, redactBySchema, sensitivePaths } from '../../src/governance';

/** Converts exactly as the agent registry does for a tool's input schema. */
function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

const secret = () => z.string().meta({ sensitive: true });

describe('redactBySchema', () => {
  it('redacts a plain sensitive field and leaves the rest', () => {
    const schema = jsonSchemaOf(z.object({ orderId: z.string(), note: secret() }));
    expect(redactBySchema({ orderId: 'ORD-1', note: 'card 4242' }, schema)).toEqual({ orderId: 'ORD-1', note: REDACTED });
  });

  it('redacts every value of a record (additionalProperties)', () => {
    const schema = jsonSchemaOf(z.object({ tokens: z.record(z.string(), secret()) }));
    expect(redactBySchema({ tokens: { github: 'ghp_1', slack: 'xoxb-2' } }, schema)).toEqual({ tokens: { github: REDACTED, slack: REDACTED } });
  });

  it('redacts the catch-all members of an object (catchall) next to its named ones', () => {
    const schema = jsonSchemaOf(z.object({ name: z.string() }).catchall(secret()));
    expect(redactBySchema({ name: 'a', extra: 'hidden' }, schema)).toEqual({ name: 'a', extra: REDACTED });
  });

  it('redacts by patternProperties, and only the members whose key matches', () => {
    const schema = { type: 'object', patternProperties: { '^secret_': { type: 'string', sensitive: true } }, additionalProperties: { type: 'string' } };
    expect(redactBySchema({ secret_a: 'x', plain: 'y' }, schema)).toEqual({ secret_a: REDACTED, plain: 'y' });
  });

  it('redacts a whole record whose keys are sensitive (propertyNames)', () => {
    const schema = jsonSchemaOf(z.object({ byCard: z.record(secret(), z.number()) }));
    expect(redactBySchema({ byCard: { '4242424242424242': 3 } }, schema)).toEqual({ byCard: REDACTED });
  });

  it('redacts inside arrays nested at any depth', () => {
    const schema = jsonSchemaOf(z.object({ grid: z.array(z.array(z.object({ pin: secret(), label: z.string() }))) }));
    const value = { grid: [[{ pin: '1', label: 'a' }], [{ pin: '2', label: 'b' }, { pin: '3', label: 'c' }]] };
    expect(redactBySchema(value, schema)).toEqual({
      grid: [[{ pin: REDACTED, label: 'a' }], [{ pin: REDACTED, label: 'b' }, { pin: REDACTED, label: 'c' }]],
    });
  });

  it('redacts tuple positions (prefixItems) and no other', () => {
    const schema = jsonSchemaOf(z.object({ login: z.tuple([z.string(), secret()]) }));
    expect(redactBySchema({ login: ['alice', 'hunter2'] }, schema)).toEqual({ login: ['alice', REDACTED] });
  });

  it('redacts the rest items of a tuple', () => {
    const schema = jsonSchemaOf(z.object({ row: z.tuple([z.string()], secret()) }));
    expect(redactBySchema({ row: ['id', 's1', 's2'] }, schema)).toEqual({ row: ['id', REDACTED, REDACTED] });
  });

  it('follows $ref into $defs (a schema with .meta({ id }))', () => {
    const card = z.object({ number: secret(), holder: z.string() }).meta({ id: 'Card' });
    const schema = jsonSchemaOf(z.object({ from: card, to: card }));
    expect(JSON.stringify(schema)).toContain('#/$defs/Card');
    expect(redactBySchema({ from: { number: '1', holder: 'a' }, to: { number: '2', holder: 'b' } }, schema)).toEqual({
      from: { number: REDACTED, holder: 'a' },
      to: { number: REDACTED, holder: 'b' },
    });
  });

  it('follows a root-level $ref (the tool input itself has an id)', () => {
    const schema = jsonSchemaOf(z.object({ token: secret(), user: z.string() }).meta({ id: 'Login' }));
    expect(redactBySchema({ token: 't', user: 'u' }, schema)).toEqual({ token: REDACTED, user: 'u' });
  });

  it('follows recursive schemas ($ref "#" and $defs cycles) without looping', () => {
    const tree: z.ZodType = z.object({
      key: secret(),
      get children() {
        return z.array(tree);
      },
    });
    const value = { key: 'k1', children: [{ key: 'k2', children: [{ key: 'k3', children: [] }] }] };
    const redacted = { key: REDACTED, children: [{ key: REDACTED, children: [{ key: REDACTED, children: [] }] }] };
    const atRoot = jsonSchemaOf(tree);
    expect(JSON.stringify(atRoot)).toContain('"$ref":"#"');
    expect(redactBySchema(value, atRoot)).toEqual(redacted);
    const nested = jsonSchemaOf(z.object({ tree }));
    expect(JSON.stringify(nested)).toContain('#/$defs/');
    expect(redactBySchema({ tree: value }, nested)).toEqual({ tree: redacted });
  });

  it('resolves #/definitions/... and stops at a $ref that points to itself', () => {
    const schema = {
      type: 'object',
      properties: { a: { $ref: '#/definitions/A' }, loop: { $ref: '#/definitions/Loop' } },
      definitions: { A: { type: 'string', sensitive: true }, Loop: { $ref: '#/definitions/Loop' } },
    };
    expect(redactBySchema({ a: 'x', loop: 'y' }, schema)).toEqual({ a: REDACTED, loop: 'y' });
  });

  it('redacts what an unresolvable $ref describes (fail closed)', () => {
    const schema = { type: 'object', properties: { a: { $ref: 'https://example.com/a.json' }, b: { type: 'string' } } };
    expect(redactBySchema({ a: 'x', b: 'y' }, schema)).toEqual({ a: REDACTED, b: 'y' });
  });

  it('redacts a field if any alternative of a union marks it (anyOf, fail closed)', () => {
    const schema = jsonSchemaOf(z.object({ auth: z.union([z.object({ key: secret() }), z.object({ key: z.number() })]) }));
    // The value matches the second, unmarked alternative; it is redacted all the same.
    expect(redactBySchema({ auth: { key: 42 } }, schema)).toEqual({ auth: { key: REDACTED } });
  });

  it('redacts inside discriminated unions (oneOf)', () => {
    const schema = jsonSchemaOf(
      z.object({
        pay: z.discriminatedUnion('kind', [z.object({ kind: z.literal('card'), pan: secret() }), z.object({ kind: z.literal('cash') })]),
      }),
    );
    expect(JSON.stringify(schema)).toContain('oneOf');
    expect(redactBySchema({ pay: { kind: 'card', pan: '4242' } }, schema)).toEqual({ pay: { kind: 'card', pan: REDACTED } });
  });

  it('redacts inside intersections (allOf), also of a schema with an id', () => {
    const withRecord = jsonSchemaOf(z.object({ both: z.intersection(z.object({ a: secret() }), z.record(z.string(), z.string())) }));
    expect(JSON.stringify(withRecord)).toContain('allOf');
    expect(redactBySchema({ both: { a: 'x', b: 'y' } }, withRecord)).toEqual({ both: { a: REDACTED, b: 'y' } });

    const withRef = jsonSchemaOf(z.intersection(z.object({ a: secret() }).meta({ id: 'A' }), z.object({ b: z.string() })));
    expect(JSON.stringify(withRef)).toContain('"allOf":[{"$ref":"#/$defs/A"}');
    expect(redactBySchema({ a: 'x', b: 'y' }, withRef)).toEqual({ a: REDACTED, b: 'y' });
  });

  it('redacts a nullable sensitive field', () => {
    const schema = jsonSchemaOf(z.object({ pin: secret().nullable() }));
    expect(redactBySchema({ pin: '1234' }, schema)).toEqual({ pin: REDACTED });
  });

  it('replaces a sensitive object or array whole', () => {
    const schema = jsonSchemaOf(
      z.object({ card: z.object({ number: z.string(), cvc: z.string() }).meta({ sensitive: true }), codes: z.array(z.string()).meta({ sensitive: true }) }),
    );
    expect(redactBySchema({ card: { number: '4242', cvc: '123' }, codes: ['a', 'b'] }, schema)).toEqual({ card: REDACTED, codes: REDACTED });
  });

  it('handles keys that contain dots, and redacts only the field so named', () => {
    const schema = jsonSchemaOf(z.object({ 'api.key': secret(), api: z.object({ key: z.string() }) }));
    expect(redactBySchema({ 'api.key': 's', api: { key: 'public' } }, schema)).toEqual({ 'api.key': REDACTED, api: { key: 'public' } });
  });

  it('redacts everything when there is no schema (a tool the agent does not have)', () => {
    expect(redactBySchema({ anything: 'at all' }, undefined)).toBe(REDACTED);
  });

  it('returns a copy and leaves the input as it was', () => {
    const schema = jsonSchemaOf(z.object({ s: secret(), n: z.object({ x: z.number() }) }));
    const value = { s: 'x', n: { x: 1 } };
    const out = redactBySchema(value, schema) as typeof value;
    expect(value).toEqual({ s: 'x', n: { x: 1 } });
    expect(out.n).not.toBe(value.n);
  });

  it('keeps an own __proto__ member as data, and redacts it when the schema says so', () => {
    const schema = { type: 'object', properties: { ['__proto__']: { type: 'string', sensitive: true } } };
    const value = JSON.parse('{"__proto__":"x","a":1}') as Record<string, unknown>;
    const out = redactBySchema(value, schema) as Record<string, unknown>;
    expect(Object.getOwnPropertyNames(out).sort()).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toBe(REDACTED);
  });
});

describe('sensitivePaths + redactArgs (the old path-based redaction)', () => {
  it('misses records, tuples and $ref, which redactBySchema catches (the bug this replaces)', () => {
    const card = z.object({ number: secret() }).meta({ id: 'Card' });
    const schema = jsonSchemaOf(z.object({ tokens: z.record(z.string(), secret()), login: z.tuple([z.string(), secret()]), card }));
    const value = { tokens: { github: 'ghp_1' }, login: ['alice', 'hunter2'], card: { number: '4242' } };

    const old = redactArgs(value, sensitivePaths(schema));
    expect(old).toEqual(value); // every secret still in clear

    expect(redactBySchema(value, schema)).toEqual({ tokens: { github: REDACTED }, login: ['alice', REDACTED], card: { number: REDACTED } });
  });
});

describe('a tool that reshapes its arguments: redaction by the output side (toolSpec + argsSchemaOf)', () => {
  /** What the workflow redacts a call's parsed arguments with, for a tool defined with this input schema. */
  function shown<S extends z.ZodType>(input: S, raw: unknown): unknown {
    const tool = defineTool({ name: 't', description: 't', input, run: () => null });
    return redactBySchema(input.parse(raw), argsSchemaOf(toolSpec(tool)));
  }

  it('an object-level transform that renames a sensitive field hides the whole result (its output is not described)', () => {
    const input = z.object({ card: secret(), amount: z.number() }).transform(({ card, amount }) => ({ cardNumber: card, amount }));
    expect(shown(input, { card: '4242', amount: 3 })).toBe(REDACTED);
  });

  it('a transform whose output is described with .pipe hides what the output marks, and only that', () => {
    const input = z
      .object({ card: secret(), amount: z.number() })
      .transform(({ card, amount }) => ({ cardNumber: card, amount }))
      .pipe(z.object({ cardNumber: secret(), amount: z.number() }));
    expect(shown(input, { card: '4242', amount: 3 })).toEqual({ cardNumber: REDACTED, amount: 3 });
  });

  it('a described output that marks nothing, from an input that marks something, is hidden whole', () => {
    const input = z.object({ card: secret() }).transform(({ card }) => ({ last4: card.slice(-4) })).pipe(z.object({ last4: z.string() }));
    expect(shown(input, { card: '4242424242424242' })).toBe(REDACTED);
  });

  it('a transform of one sensitive field keeps that field hidden and the others shown', () => {
    const input = z.object({ card: secret().transform((c) => c.replace(/ /g, '')), amount: z.number() });
    expect(shown(input, { card: '4242 4242', amount: 3 })).toEqual({ card: REDACTED, amount: 3 });
    const markedOutside = z.object({ card: z.string().transform((c) => c.trim()).meta({ sensitive: true }), amount: z.number() });
    expect(shown(markedOutside, { card: ' 4242 ', amount: 3 })).toEqual({ card: REDACTED, amount: 3 });
  });

  it('a preprocess step is judged by the schema after it', () => {
    const input = z.preprocess((v) => v, z.object({ pin: secret(), to: z.string() }));
    expect(shown(input, { pin: '1234', to: 'acct' })).toEqual({ pin: REDACTED, to: 'acct' });
  });

  it('a tool that does not reshape its arguments keeps the spec it had (no argsSchema in history)', () => {
    const tool = defineTool({ name: 't', description: 't', input: z.object({ pin: secret().default('0000'), to: z.string().trim().toLowerCase() }), run: () => null });
    expect(toolSpec(tool).argsSchema).toBeUndefined();
    expect(redactBySchema({ pin: '1234', to: 'acct' }, argsSchemaOf(toolSpec(tool)))).toEqual({ pin: REDACTED, to: 'acct' });
  });
});
