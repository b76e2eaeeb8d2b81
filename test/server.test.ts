import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { descriptorsFor } from './helpers/descriptors.js'
import { register, request } from './helpers/http.js'
import { listeningUrl, outputMatching, spawnServer, type ServerProcess } from './helpers/server-process.js'
import { uniqueTicker } from './helpers/redis.js'
import { SseClient } from './helpers/sse-client.js'
import { stuckStream } from './helpers/stuck-stream.js'
import { tcpProxy } from './helpers/tcp-proxy.js'

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

/** How many of process `pid`'s descriptors refer to the socket listening on `port` (from /proc). */
function listeningDescriptors (pid: number, port: number): number {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0')
  // /proc/net/tcp: local address is field 1 (ADDR:PORT in hex), state field 3 (0A = LISTEN), inode field 9.
  const listening = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)
    .map((line) => line.trim().split(/\s+/))
    .find((fields) => fields[1]?.endsWith(`:${portHex}`) === true && fields[3] === '0A')
  if (listening === undefined) throw new Error(`nothing listens on ${port}`)
  return descriptorsFor(`socket:[${listening[9] ?? ''}]`, pid)
}

for (const descriptors of [1, 5]) {
  t.test(`ACCEPT_DESCRIPTORS=${descriptors}: the listening socket has that many descriptors, and serves`, async (t) => {
    const server = spawnServer({ ACCEPT_DESCRIPTORS: String(descriptors), LOG_LEVEL: 'debug' })
    t.teardown(() => { server.child.kill('SIGKILL') })
    const baseUrl = await listeningUrl(server)
    const added = await outputMatching(server, /"extraAcceptors":(\d+)/)
    t.equal(Number(added[1]), descriptors - 1, 'the server says how many it added')
    t.equal(listeningDescriptors(server.child.pid ?? 0, Number(new URL(baseUrl).port)), descriptors, '/proc agrees')
    const health = await request(baseUrl, '/health')
    t.equal(health.status, 200)
  })
}

/** SIGTERM, then the contract's promise: exit status 0 within SHUTDOWN_GRACE_MS plus a second. */
async function expectCleanExitWithinGrace (t: Test, server: ServerProcess, graceMs: number): Promise<void> {
  const started = Date.now()
  server.child.kill('SIGTERM')
  const { code } = await server.exited
  const tookMs = Date.now() - started
  t.equal(code, 0, `exit status 0 (stderr: ${server.stderr()})`)
  t.ok(tookMs < graceMs + 1000, `exited in ${tookMs} ms, within the grace period plus a second`)
}

t.test('a client that never reads does not hold the shutdown past the grace period', async (t) => {
  const graceMs = 1500
  const server = spawnServer({ SHUTDOWN_GRACE_MS: String(graceMs), PUBLISH_TOKEN: 'tok', FLUSH_INTERVAL_MS: '5' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const baseUrl = await listeningUrl(server)
  const stuck = await stuckStream(baseUrl, t)
  await expectCleanExitWithinGrace(t, server, graceMs)
  stuck.close()
})

t.test('Redis connected but answering nothing does not hold the exit past the grace period either', async (t) => {
  const graceMs = 1500
  const proxy = await tcpProxy(t)
  const server = spawnServer({ SHUTDOWN_GRACE_MS: String(graceMs), PUBLISH_TOKEN: 'tok', FLUSH_INTERVAL_MS: '5', REDIS_URL: proxy.url, RATE_LIMIT_MAX: '0' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const baseUrl = await listeningUrl(server)
  await outputMatching(server, /"role":"commands","msg":"redis connection ready"/)
  await outputMatching(server, /"role":"subscriber","msg":"redis connection ready"/)
  // Unique tickers: the shared Redis carries other tests' prices too.
  const stuck = await stuckStream(baseUrl, t, Array.from({ length: 40 }, () => uniqueTicker('G')))
  proxy.stopForwarding()
  await expectCleanExitWithinGrace(t, server, graceMs)
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

t.test('a request still uploading its body does not hold the exit past the grace period', async (t) => {
  const graceMs = 1500
  const server = spawnServer({ SHUTDOWN_GRACE_MS: String(graceMs) })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const baseUrl = await listeningUrl(server)
  const url = new URL(baseUrl)
  // Half a POST body, never finished.
  const socket = connect(Number(url.port), url.hostname)
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"userId":')
  // A round trip on another connection proves the server has read the partial request.
  t.equal((await request(baseUrl, '/health')).status, 200)
  const started = Date.now()
  server.child.kill('SIGTERM')
  const { code } = await server.exited
  t.equal(code, 0, `exit status 0 (stderr: ${server.stderr()})`)
  t.ok(Date.now() - started < graceMs + 1000, 'within the grace period plus a second')
})
