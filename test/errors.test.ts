/**
 * One way to fail: every error Warden throws on purpose is a `WardenError`, and callers tell them
 * apart with `isInstance`, which holds across copies of the package (a project's own Warden beside
 * the CLI's). No server: errors are made and recognised in this process.
 */
import * as warden from '../src';
import type * as DefineModule from '../src/agents/define';
import { ToolError, DefinitionError } from '../src/agents/define';
import { PayloadCodecError, PayloadKeyError } from '../src/codec/codec-errors';
import type * as ErrorsModule from '../src/errors';
import { errorMarker, WardenError } from '../src/errors';
import { StoreError } from '../src/store/rows';

/** The modules as a second copy of the package loads them: classes of their own, markers shared. */
function secondCopy(): { errors: typeof ErrorsModule; define: typeof DefineModule } {
  let copy: { errors: typeof ErrorsModule; define: typeof DefineModule } | undefined;
  jest.isolateModules(() => {
    /* eslint-disable @typescript-eslint/no-require-imports */
    copy = { errors: require('../src/errors') as typeof ErrorsModule, define: require('../src/agents/define') as typeof DefineModule };
    /* eslint-enable @typescript-eslint/no-require-imports */
  });
  if (!copy) throw new Error('jest.isolateModules did not run its callback');
  return copy;
}

describe('WardenError.isInstance', () => {
  test('recognises errors made by a second copy of the module, which instanceof does not', () => {
    const other = secondCopy();
    expect(other.errors.WardenError).not.toBe(WardenError);
    expect(other.define.ToolError).not.toBe(ToolError);

    const base = new other.errors.WardenError('from the other copy');
    expect(base instanceof WardenError).toBe(false);
    expect(WardenError.isInstance(base)).toBe(true);

    const tool = new other.define.ToolError('refund refused', { retryable: true });
    expect(tool instanceof ToolError).toBe(false);
    expect(ToolError.isInstance(tool)).toBe(true);
    expect(WardenError.isInstance(tool)).toBe(true);
    expect(DefinitionError.isInstance(tool)).toBe(false);
    // Narrowed to this copy's ToolError: what the activity's retry decision reads.
    if (ToolError.isInstance(tool)) expect(tool.options.retryable).toBe(true);

    // And the other way round: the second copy recognises this copy's errors.
    expect(other.define.ToolError.isInstance(new ToolError('x'))).toBe(true);
    expect(other.errors.WardenError.isInstance(new StoreError('x'))).toBe(true);
  });

  test('subclass markers do not cross: a ToolError is a WardenError, a StoreError is not a ToolError', () => {
    expect(WardenError.isInstance(new ToolError('x'))).toBe(true);
    expect(ToolError.isInstance(new ToolError('x'))).toBe(true);
    expect(ToolError.isInstance(new StoreError('x'))).toBe(false);
    expect(StoreError.isInstance(new ToolError('x'))).toBe(false);
    expect(ToolError.isInstance(new WardenError('x'))).toBe(false);
    // A subclass of a subclass carries both markers; its parent does not carry the child's.
    expect(PayloadCodecError.isInstance(new PayloadKeyError('x'))).toBe(true);
    expect(PayloadKeyError.isInstance(new PayloadCodecError('x'))).toBe(false);
  });

  test('is told by the marker, never by name or message', () => {
    const lookalike = Object.assign(new Error('refund refused'), { name: 'ToolError' });
    expect(ToolError.isInstance(lookalike)).toBe(false);
    expect(WardenError.isInstance(lookalike)).toBe(false);
    for (const value of [null, undefined, 'ToolError', 42, { name: 'WardenError' }]) expect(WardenError.isInstance(value)).toBe(false);
  });

  test('markers stay out of logs and JSON: they are not enumerable', () => {
    const err = new ToolError('x');
    expect(Object.getOwnPropertySymbols(err)).toEqual(expect.arrayContaining([Symbol.for('warden.error'), errorMarker('ToolError')]));
    expect(Object.getOwnPropertySymbols(err).every((s) => !Object.getOwnPropertyDescriptor(err, s)?.enumerable)).toBe(true);
  });

  test("a subclass declaring no marker (a user's own) is recognised by instanceof", () => {
    class RefundError extends WardenError {
      override name = 'RefundError';
    }
    expect(RefundError.isInstance(new RefundError('x'))).toBe(true);
    expect(RefundError.isInstance(new WardenError('x'))).toBe(false);
    expect(WardenError.isInstance(new RefundError('x'))).toBe(true);
  });

  test('keeps the cause it is given', () => {
    const cause = new Error('disk full');
    expect(new StoreError('run store: cannot write', { cause }).cause).toBe(cause);
  });
});

describe('the package root', () => {
  const errorClasses = Object.entries(warden as Record<string, unknown>).filter((entry): entry is [string, new (message: string) => Error] => typeof entry[1] === 'function' && entry[1].prototype instanceof Error);

  test('exports error classes', () => {
    expect(errorClasses.map(([name]) => name)).toEqual(expect.arrayContaining(['WardenError', 'ToolError', 'DefinitionError', 'PolicyError']));
  });

  test.each(errorClasses)('%s is a WardenError with its own name and marker', (exported, cls) => {
    const err = new cls('x');
    expect(WardenError.isInstance(err)).toBe(true);
    expect(err.name).toBe(exported);
    expect(Object.hasOwn(cls, 'marker')).toBe(true);
    expect((cls as unknown as typeof WardenError).isInstance(err)).toBe(true);
  });
});
