import t, { type Test } from 'tap'
import { register, request } from './helpers/http.js'
import { listeningUrl, spawnServer } from './helpers/server-process.js'
import { SseClient } from './helpers/sse-client.js'

/** The real entry point (src/server.ts) in its own process, stopped by a real signal. */

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: streams get end "shutdown", then the process exits 0`, async (t) => {
    const server = spawnServer({ SHUTDOWN_GRACE_MS: '5000', RETRY_MS: '2000' })
    t.teardown(() => { server.child.kill('SIGKILL') })
    const baseUrl = await listeningUrl(server)
    const session = await register(baseUrl, 'alice', ['AAPL'])
    const client = await SseClient.open(baseUrl, session.streamUrl)
    await client.next()
    const started = Date.now()
    server.child.kill(signal)
    const end = await client.waitFor((event) => event.event === 'end')
    t.same(end.json, { reason: 'shutdown' })
    const retry = client.retries.at(-1) ?? 0
    t.ok(retry >= 2000 && retry < 7000, `a spread retry hint (${retry})`)
    const { code } = await server.exited
    t.equal(code, 0, `exit status 0 (stderr: ${server.stderr()})`)
    t.ok(Date.now() - started < 5000 + 1000, 'within SHUTDOWN_GRACE_MS plus a second')
  })
}

async function stuckStream (baseUrl: string, t: Test): Promise<SseClient> {
  const tickers = Array.from({ length: 40 }, (_, i) => `T${i}`)
  const session = await register(baseUrl, 'stuck', tickers)
  const stuck = await SseClient.open(baseUrl, session.streamUrl)
  await stuck.next()
  stuck.pause()
  // Fill the stuck client's socket so its end event cannot be delivered.
  const pad = 'x'.repeat(6000)
  for (let i = 0; i < 60; i++) {
    const res = await request(baseUrl, '/prices', { method: 'POST', headers: { authorization: 'Bearer tok' }, body: tickers.map((ticker) => ({ ticker, price: i, pad })) })
    t.equal(res.status, 202)
  }
  return stuck
}

t.test('a client that never reads does not hold the shutdown past the grace period', async (t) => {
  const graceMs = 1500
  const server = spawnServer({ SHUTDOWN_GRACE_MS: String(graceMs), PUBLISH_TOKEN: 'tok', FLUSH_INTERVAL_MS: '5' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const baseUrl = await listeningUrl(server)
  const stuck = await stuckStream(baseUrl, t)
  const started = Date.now()
  server.child.kill('SIGTERM')
  const { code } = await server.exited
  const tookMs = Date.now() - started
  t.equal(code, 0, `exit status 0 (stderr: ${server.stderr()})`)
  t.ok(tookMs < graceMs + 1000, `exited in ${tookMs} ms, within the grace period plus a second`)
  stuck.close()
})

t.test('while draining, the server listens: /ready is 503, new sessions and streams are refused', async (t) => {
  const server = spawnServer({ SHUTDOWN_GRACE_MS: '3000', PUBLISH_TOKEN: 'tok', FLUSH_INTERVAL_MS: '5' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const baseUrl = await listeningUrl(server)
  const pending = await register(baseUrl, 'pending', ['AAPL'])
  // A stuck stream keeps the drain going (until the grace period ends) while we probe.
  const stuck = await stuckStream(baseUrl, t)
  t.equal((await request(baseUrl, '/ready')).status, 200)
  server.child.kill('SIGTERM')
  // Probe until the signal has been handled.
  let ready = await request(baseUrl, '/ready')
  while (ready.status === 200) ready = await request(baseUrl, '/ready')
  t.equal(ready.status, 503)
  const refused = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'late', tickers: ['AAPL'] } })
  t.equal(refused.status, 503, 'no new session')
  t.equal((await request(baseUrl, '/health')).status, 200, 'still serving')
  const stream = await request(baseUrl, pending.streamUrl)
  t.equal(stream.status, 503, 'no new stream')
  t.equal((await server.exited).code, 0)
  stuck.close()
})
