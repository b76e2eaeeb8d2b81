import t from 'tap'
import { startApp } from './helpers/app.js'
import { metric, metrics, register, request } from './helpers/http.js'
import { publish } from './helpers/prices.js'
import { SseClient } from './helpers/sse-client.js'

t.test('session ids are never logged in full at info level', async (t) => {
  const lines: string[] = []
  const { baseUrl } = await startApp(t, { LOG_LEVEL: 'info' }, { logLines: lines })
  const session = await register(baseUrl, 'alice', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  await client.next()
  await request(baseUrl, `/sessions/${session.sessionId}`)
  await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })
  await client.finished
  t.ok(lines.length > 0, 'requests were logged')
  t.notOk(lines.some((line) => line.includes(session.sessionId)), 'no line holds the full id')
  t.ok(lines.some((line) => line.includes(`/sessions/${session.sessionId.slice(0, 8)}…`)), 'URLs keep an 8-character prefix')
  t.ok(lines.every((line) => typeof JSON.parse(line).reqId === 'string' || !line.includes('"req"')), 'request lines carry a request id')
  const entries = lines.map((line) => JSON.parse(line))
  t.ok(entries.some((entry) => entry.msg === 'incoming request' && entry.level === 30 && entry.req?.method === 'POST' && entry.req?.url === '/sessions'), 'Fastify\'s incoming-request line, at info')
  t.ok(entries.some((entry) => entry.msg === 'request completed' && entry.level === 30 && entry.res?.statusCode === 201 && typeof entry.responseTime === 'number'), 'Fastify\'s request-completed line, at info')
})

t.test('each deactivation is one structured debug line: id prefix, reason, lifetime', async (t) => {
  const lines: string[] = []
  const { baseUrl } = await startApp(t, { LOG_LEVEL: 'debug' }, { logLines: lines })
  const session = await register(baseUrl, 'bob', ['AAPL'])
  await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })
  const entries = lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'session deactivated')
  t.equal(entries.length, 1)
  t.equal(entries[0].level, 20, 'debug')
  t.equal(entries[0].sessionId, session.sessionId.slice(0, 8))
  t.equal(entries[0].reason, 'deleted')
  t.type(entries[0].lifetimeMs, 'number')
  const registered = lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'session registered')
  t.equal(registered.length, 1, 'the registration is one debug line too')
  t.match(registered[0], { level: 20, sessionId: session.sessionId.slice(0, 8), evicted: 0, reqId: String })
})

t.test('at info level neither debug line is written', async (t) => {
  const lines: string[] = []
  const { baseUrl } = await startApp(t, { LOG_LEVEL: 'info' }, { logLines: lines })
  const session = await register(baseUrl, 'erin', ['AAPL'])
  await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })
  t.ok(lines.length > 0, 'info lines were written')
  t.notOk(lines.some((line) => /session (registered|deactivated)/.test(line)), 'no debug line')
})

t.test('registration latency and flush size are histograms; event-loop lag is exposed', async (t) => {
  const { app, baseUrl } = await startApp(t, { FLUSH_INTERVAL_MS: '20' })
  const session = await register(baseUrl, 'carol', ['AAPL', 'MSFT'])
  await register(baseUrl, 'dave', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  await publish(app, [{ ticker: 'AAPL', price: 1 }, { ticker: 'MSFT', price: 2 }])
  await client.waitFor((event) => event.event === 'prices')
  const values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_registration_duration_seconds_count'), 2, 'two registrations observed')
  t.ok(metric(values, 'tickstream_registration_duration_seconds_sum') > 0)
  t.equal(metric(values, 'tickstream_flush_prices_count'), 1, 'one prices event')
  t.equal(metric(values, 'tickstream_flush_prices_sum'), 2, 'with two prices')
  t.equal(metric(values, 'tickstream_flush_prices_bucket{le="1"}'), 0)
  t.equal(metric(values, 'tickstream_flush_prices_bucket{le="2"}'), 1)
  t.equal(metric(values, 'tickstream_flush_prices_bucket{le="100"}'), 1, 'buckets are cumulative')
  t.equal(metric(values, 'tickstream_flush_prices_bucket{le="+Inf"}'), 1)
  t.equal(metric(values, 'tickstream_registration_duration_seconds_bucket{le="+Inf"}'), 2)
  const text = (await request(baseUrl, '/metrics')).text
  t.match(text, /# TYPE tickstream_flush_prices histogram\n/, 'declared as a histogram')
  t.match(text, /# HELP tickstream_registration_duration_seconds Time to register a session/)
  t.ok(values.has('nodejs_eventloop_lag_seconds'), 'event-loop lag')
  t.ok(values.has('process_resident_memory_bytes'), 'process metrics')
})
