import Fastify from 'fastify'
import t from 'tap'
import tickstreamApp, { serverOptions } from '../src/app.js'
import { startApp, testConfig } from './helpers/app.js'
import { register } from './helpers/http.js'
import { SseClient } from './helpers/sse-client.js'

t.test('the server sets explicit timeouts, none of which applies to an open response', async (t) => {
  const { app } = await startApp(t)
  t.equal(app.server.requestTimeout, 30_000, 'a request must arrive whole within 30 s')
  t.equal(app.server.keepAliveTimeout, 72_000, 'idle keep-alive connections close after 72 s')
  t.equal(app.server.timeout, 0, 'no socket inactivity timeout: a quiet stream is not idle')
})

t.test('a stream outlives the request timeout', async (t) => {
  // The same options with a request timeout short enough to watch it pass.
  const config = testConfig({ HEARTBEAT_MS: '300' })
  const app = Fastify({ ...serverOptions(config), requestTimeout: 200 })
  await app.register(tickstreamApp, { config, loadShedding: { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0 } })
  t.teardown(async () => { await app.close() })
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
  const session = await register(baseUrl, 'alice', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  // Three heartbeats (about a second) span the 200 ms request timeout several times over.
  for (let i = 0; i < 3; i++) await client.waitForComment(i)
  t.equal(client.ended, false, 'still open')
})
