import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type * as TsxApi from 'tsx/cjs/api';

const TS_FILE = /\.[cm]?tsx?$/;
let registered = false;

/**
 * Lets `require` load TypeScript (tsx's CommonJS hook). Called only for commands that load a
 * TypeScript module (`--agents ./agents.ts`, the package's examples), so every other command
 * starts from compiled JavaScript without paying for tsx. Idempotent.
 */
export function registerTypeScript(): void {
  if (registered) return;
  // Required here, not imported: the hook is the cost this module exists to avoid.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('tsx/cjs/api') as typeof TsxApi).register();
  registered = true;
}

/** Whether loading `modulePath` (a file, or a directory with an index file) needs TypeScript. */
export function isTypeScriptModule(modulePath: string): boolean {
  const resolved = path.resolve(modulePath);
  if (TS_FILE.test(resolved)) return true;
  if (existsSync(resolved) && statSync(resolved).isDirectory()) {
    return !['index.js', 'index.cjs', 'index.mjs'].some((f) => existsSync(path.join(resolved, f))) && ['index.ts', 'index.mts', 'index.cts'].some((f) => existsSync(path.join(resolved, f)));
  }
  // `./agents` without an extension: TypeScript when only the .ts file exists.
  return !existsSync(resolved) && !existsSync(`${resolved}.js`) && ['.ts', '.mts', '.cts'].some((ext) => existsSync(resolved + ext));
}

/** Registers TypeScript when `modulePath` needs it. */
export function prepareToLoad(modulePath: string): void {
  if (isTypeScriptModule(modulePath)) registerTypeScript();
}
