import { rmSync } from 'node:fs';

/** Stops the suite's dev server and removes the bundle that global setup left. */
export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__wardenTest;
  if (!state) return;
  globalThis.__wardenTest = undefined;
  await state.server.stop();
  rmSync(state.tempDir, { recursive: true, force: true });
}
