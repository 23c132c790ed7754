/**
 * The base class of every error Warden throws on purpose: `ToolError`, `DefinitionError`,
 * `PolicyError`, `StoreError`, `KeyringError`, `PayloadCodecError`, `DevServerError`, the CLI's
 * `CliError`, … Each subclass names itself (`err.name`) and carries a message written for the
 * person who can fix it (it names the file, the field, the run). Callers branch on these classes,
 * never on message text.
 *
 * Sandbox-safe (no Node built-ins): governance and workflow code import it too.
 */
export class WardenError extends Error {
  override name = 'WardenError';
}
