import { existsSync } from 'node:fs'
import { copyFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Page } from 'playwright-core'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { launchBrowser, openLivePage, recordPageProblems, sessionIdOf, waitForState } from '../helpers/browser.js'
import { request } from '../helpers/http.js'
import { REPO_ROOT } from '../helpers/server-process.js'

/** Prices flowing (the built-in feed), and the per-user limit the eviction test is about. */
const LIVE_ENV = { FEED: 'simulated', FEED_RATE: '50', MAX_SESSIONS_PER_USER: '3' }
const DEFAULT_TICKERS = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'AMZN']

const ARTIFACT_SCREENSHOT = path.join(REPO_ROOT, 'test-artifacts', 'live-table.png')
// Committed and shown in the README: written when missing, or refreshed on request, so that a
// test run does not leave a changed tracked file behind every time.
const DOCS_SCREENSHOT = path.join(REPO_ROOT, 'docs', 'live-table.png')

async function priceOf (page: Page, ticker: string): Promise<string> {
  const price = await page.locator(`tr[data-ticker="${ticker}"]`).getAttribute('data-price')
  if (price === null) throw new Error(`no price shown for ${ticker}`)
  return price
}

t.test('the page registers, then shows live prices that change', async (t) => {
  const { baseUrl } = await startApp(t, LIVE_ENV)
  const context = await launchBrowser(t)
  const problems = recordPageProblems(context)
  const page = await openLivePage(context, baseUrl, 'alice')

  t.same(await page.locator('#prices tbody th[scope="row"]').allTextContents(), DEFAULT_TICKERS, 'one row per default ticker, in order')
  for (const ticker of DEFAULT_TICKERS) await page.locator(`tr[data-ticker="${ticker}"][data-price]`).waitFor()
  const firstPrices = new Map<string, string>()
  for (const ticker of DEFAULT_TICKERS) firstPrices.set(ticker, await priceOf(page, ticker))

  // Some row whose price is no longer the one first seen.
  const changedRow = DEFAULT_TICKERS.map((ticker) => `tr[data-ticker="${ticker}"]:not([data-price="${firstPrices.get(ticker)}"])`).join(', ')
  await page.locator(changedRow).first().waitFor()
  const movedChanges = page.locator('td.change[data-direction="up"], td.change[data-direction="down"]')
  await movedChanges.first().waitFor()
  await page.locator('tr.flash-up, tr.flash-down').first().waitFor()

  const changedTicker = await page.locator(changedRow).first().getAttribute('data-ticker')
  const changeText = await page.locator(`tr[data-ticker="${changedTicker}"] td.change`).textContent()
  t.match(changeText, /[▲▼■].*%/, 'the change shows a direction, an amount and a percentage')
  t.match(await page.locator(`tr[data-ticker="${changedTicker}"] td.updated time`).getAttribute('datetime'), /^\d{4}-\d\d-\d\dT/, 'the last update is a time')
  t.match(await page.locator('#status-text').textContent(), /^Live: streaming 5 tickers for alice\./)
  t.match(await sessionIdOf(page), /^[\w-]{20,}$/, 'the session id is on the page')

  // A screenshot worth showing: most rows have moved by now.
  await movedChanges.nth(3).waitFor()
  await mkdir(path.dirname(ARTIFACT_SCREENSHOT), { recursive: true })
  await page.screenshot({ path: ARTIFACT_SCREENSHOT, fullPage: true })
  if (!existsSync(DOCS_SCREENSHOT) || process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    await mkdir(path.dirname(DOCS_SCREENSHOT), { recursive: true })
    await copyFile(ARTIFACT_SCREENSHOT, DOCS_SCREENSHOT)
  }

  t.same(problems, [], 'no console errors (CSP violations included) and no uncaught exceptions')
})

t.test('a fourth tab of the same user evicts the first, which explains it and offers to reconnect', async (t) => {
  const { baseUrl } = await startApp(t, LIVE_ENV)
  const context = await launchBrowser(t)
  const first = await openLivePage(context, baseUrl, 'bob')
  const second = await openLivePage(context, baseUrl, 'bob')
  const third = await openLivePage(context, baseUrl, 'bob')
  await openLivePage(context, baseUrl, 'bob')

  await waitForState(first, 'evicted')
  t.equal(await first.locator('#notice').getAttribute('data-reason'), 'evicted')
  t.match(await first.locator('#notice').textContent(), /another tab or on another device/)
  const reconnect = first.getByRole('button', { name: 'Reconnect in this tab' })
  t.ok(await reconnect.isVisible(), 'a reconnect button is offered')
  t.equal(await second.locator('#connection-status').getAttribute('data-state'), 'live', 'the other tabs stay live')
  t.equal(await third.locator('#connection-status').getAttribute('data-state'), 'live')

  // Taking the slot back evicts the oldest of the others; nothing reconnects on its own.
  await reconnect.click()
  await waitForState(first, 'live')
  await waitForState(second, 'evicted')
  t.ok(await first.locator('#notice').isHidden(), 'the notice goes once reconnected')
  t.equal(await third.locator('#connection-status').getAttribute('data-state'), 'live')
})

t.test('a session deleted on the server shows "deleted", then the page registers a new one', async (t) => {
  const { baseUrl } = await startApp(t, LIVE_ENV)
  const context = await launchBrowser(t)
  const page = await openLivePage(context, baseUrl, 'carol')
  const sessionId = await sessionIdOf(page)

  const deleted = await request(baseUrl, `/sessions/${sessionId}`, { method: 'DELETE' })
  t.equal(deleted.status, 204)
  await page.locator('#notice[data-reason="deleted"]').waitFor()
  t.match(await page.locator('#notice').textContent(), /deleted on the server/)

  await page.locator(`#live[data-session-id]:not([data-session-id="${sessionId}"])`).waitFor()
  await waitForState(page, 'live')
  const replacement = await sessionIdOf(page)
  t.not(replacement, sessionId, 'a new session')
  t.equal((await request(baseUrl, `/sessions/${replacement}`)).body.state, 'streaming')
})

t.test('a server shutdown shows the reconnecting state, retrying with back-off while refused', async (t) => {
  const { app, baseUrl } = await startApp(t, LIVE_ENV)
  const context = await launchBrowser(t)
  const page = await openLivePage(context, baseUrl, 'dave')

  await app.drain(2000)
  await page.locator('#notice[data-reason="shutdown"]').waitFor()
  await waitForState(page, 'reconnecting')
  t.match(await page.locator('#notice').textContent(), /shutting down/)
  // The draining server answers 503 to the first new registration: the page tries again later.
  await page.locator('#status-text', { hasText: /^Reconnecting in \d+\.\d s \(attempt 2\): shutting down\.$/ }).waitFor()
  t.pass('a refused registration is retried with the next back-off')
})
