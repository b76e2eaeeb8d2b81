import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'

/** The system's Chromium (Debian package); tests never download a browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

// No network beyond the app under test, no background updates, nothing a fresh profile would
// otherwise fetch or sync.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Containers often give /dev/shm only 64 MB, where Chromium crashes now and then.
  '--disable-dev-shm-usage'
]

/**
 * A headless Chromium with a fresh profile of its own, closed (and its profile removed) when
 * the test ends. A missing Chromium fails the test: the page is only proven in a browser.
 */
export async function launchBrowser (t: Test): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set CHROMIUM_PATH; browser tests do not skip`)
  }
  const profileDir = await mkdtemp(path.join(os.tmpdir(), 'tickstream-chromium-'))
  // Playwright owns --user-data-dir: a persistent context is how it takes a given profile.
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 960, height: 720 }
  })
  t.teardown(async () => {
    await context.close()
    await rm(profileDir, { recursive: true, force: true })
  })
  return context
}

/** Opens the page, starts streaming as `userId` with the page's default tickers, waits until it is live. */
export async function openLivePage (context: BrowserContext, baseUrl: string, userId: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(baseUrl)
  await page.getByLabel('User name').fill(userId)
  await page.getByRole('button', { name: 'Start streaming' }).click()
  await waitForState(page, 'live')
  return page
}

/** Waits until the connection status shows `state` (`live`, `reconnecting`, `evicted`...). */
export async function waitForState (page: Page, state: string): Promise<void> {
  await page.locator(`#connection-status[data-state="${state}"]`).waitFor()
}

export async function sessionIdOf (page: Page): Promise<string> {
  const sessionId = await page.locator('#live').getAttribute('data-session-id')
  if (sessionId === null || sessionId === '') throw new Error('the page shows no session id')
  return sessionId
}

/**
 * Console errors (a CSP violation, a failed request) and uncaught exceptions of every page of
 * `context`, as they happen: a page that works must leave this empty.
 */
export function recordPageProblems (context: BrowserContext): string[] {
  const problems: string[] = []
  context.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`)
  })
  context.on('weberror', (webError) => problems.push(`uncaught: ${webError.error().message}`))
  return problems
}
