/** Debian's Chromium driven by playwright-core (never a downloaded browser). */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium package (apt-get install chromium), as .ci/run does`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Whether Debian's Chromium is installed here. */
export const chromiumAvailable = existsSync(CHROMIUM_PATH);

/**
 * Whether the real-browser tests run. Without Chromium they are skipped and the reason is printed (a
 * skipped test is reported as skipped, never as passed). In CI (CI=true) they always run: .ci/run installs
 * Chromium, so a missing browser there fails loudly instead of skipping.
 */
function browserTestsRun(name: string): boolean {
  if (chromiumAvailable || process.env.CI === 'true') return true;
  console.warn(`SKIPPED "${name}": Chromium not found at ${CHROMIUM_PATH}. Install it (apt-get install chromium) or set CHROMIUM_PATH to run the real-browser tests.`);
  return false;
}

/** `describe` for real-browser tests (see browserTestsRun). */
export function describeIfChromium(name: string, fn: () => void): void {
  (browserTestsRun(name) ? describe : describe.skip)(name, fn);
}

/** `test` for a single real-browser test (see browserTestsRun). */
export function testIfChromium(name: string, fn: () => Promise<void>): void {
  (browserTestsRun(name) ? test : test.skip)(name, fn);
}
