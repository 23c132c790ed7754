/** A class of Warden error, as `isInstance` takes it: the class itself, subclasses included. */
type WardenErrorClass<T extends WardenError> = (abstract new (...args: never[]) => T) & { readonly marker: symbol };

/**
 * The marker of a `WardenError` subclass, for its `static override readonly marker`. `Symbol.for`
 * keys are shared by every copy of Warden loaded in the process (a project's own copy beside the
 * CLI's, a bundled worker), so `isInstance` recognises errors of a copy whose classes are others.
 */
export function errorMarker(name: string): symbol {
  return Symbol.for(`warden.error.${name}`);
}

/**
 * The base class of every error Warden throws on purpose: `ToolError`, `DefinitionError`,
 * `PolicyError`, `StoreError`, `KeyringError`, `PayloadCodecError`, `DevServerError`, the CLI's
 * `CliError`, … Each subclass names itself (`err.name`) and carries a message written for the
 * person who can fix it (it names the file, the field, the run). Callers branch on these classes,
 * never on message text, and with `isInstance` rather than `instanceof`:
 * `if (ToolError.isInstance(err)) …` holds for a `ToolError` from any copy of the package, as the
 * AI SDK's `AISDKError.isInstance` does.
 *
 * A subclass declares its marker in one line, beside its name:
 * `static override readonly marker = errorMarker('ToolError');`
 *
 * Sandbox-safe (no Node built-ins): governance and workflow code import it too.
 */
export class WardenError extends Error {
  /** The `Symbol.for` key every instance of this class carries, whichever copy of Warden made it. */
  static readonly marker: symbol = Symbol.for('warden.error');
  override name = 'WardenError';

  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    // Each class in the chain that declares a marker leaves it on the instance. Not enumerable:
    // logs and util.inspect show the error, not its markers.
    for (let cls: unknown = new.target; typeof cls === 'function' && cls !== Error; cls = Object.getPrototypeOf(cls)) {
      const marker: unknown = Object.getOwnPropertyDescriptor(cls, 'marker')?.value;
      if (typeof marker === 'symbol') Object.defineProperty(this, marker, { value: true });
    }
  }

  /**
   * Whether `err` is an error of this class or a subclass, made by any copy of Warden:
   * `WardenError.isInstance(err)`, `StoreError.isInstance(err)`. A subclass that declares no
   * marker of its own (one outside Warden) is recognised by `instanceof`, in this copy only.
   */
  static isInstance<T extends WardenError>(this: WardenErrorClass<T>, err: unknown): err is T {
    if (!Object.hasOwn(this, 'marker')) return err instanceof this;
    return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[this.marker] === true;
  }
}
