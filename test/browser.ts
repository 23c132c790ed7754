import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The browser the tests drive: the system's Chromium (never a downloaded one). */
export const CHROMIUM_PATH = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Launches Chromium headless, or fails saying what to install. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`the browser tests need Chromium at ${CHROMIUM_PATH}: install it with "apt-get install chromium" (.ci/run does), then run npm test again`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
