// Set-up shared by the browser tests: Debian's chromium (installed once by infra/chromium.sh),
// the local Cassandra node, and playwright-core driving the browser. Playwright's own browser
// download cannot work on a machine without general internet access, so the executable is
// the system one.

import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where the tests leave their screenshots (test artifacts, not sources). */
export const SCREENSHOT_DIR = join(ROOT, 'test-results/screenshots');
const CHROMIUM = '/usr/bin/chromium';
/**
 * Without the background-networking flags Chromium keeps dialling Google's services, which
 * this machine's closed network refuses; the rest keep a headless run quiet and quick.
 * (Playwright itself adds --headless, --no-sandbox and a fresh --user-data-dir.)
 */
const CHROMIUM_ARGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Installs chromium when missing (a no-op when present). */
export async function ensureChromium(): Promise<void> {
  await run('bash', [join(ROOT, 'infra/chromium.sh')], { timeout: 600_000 });
  await mkdir(SCREENSHOT_DIR, { recursive: true });
}

/** Starts the local Cassandra node the gateway stores into (a no-op when it is up). */
export async function ensureCassandra(): Promise<void> {
  await run('bash', [join(ROOT, 'infra/cassandra/start.sh')], { timeout: 600_000 });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}
