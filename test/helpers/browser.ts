// Debian's Chromium for the dashboard's browser tests, driven by playwright-core (.ci/run installs it).
import fs from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** The browser binary, or undefined where Chromium is not installed (the browser tests then skip). */
export const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((f) => fs.existsSync(f));

/** One headless browser for a test file (each is ~365 MB: one per file, not per test). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}
