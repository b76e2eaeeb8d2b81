import t from 'tap'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { publish } from '../helpers/prices.js'
import { SseClient } from '../helpers/sse-client.js'

t.test('/metrics exposes the contract metrics in Prometheus text format', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/metrics')
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  for (const [name, type] of [
    ['tickstream_sessions_active', 'gauge'],
    ['tickstream_streams_open', 'gauge'],
    ['tickstream_bus_subscriptions', 'gauge'],
    ['tickstream_priced_tickers', 'gauge'],
    ['tickstream_redis_silent_connections_dropped_total', 'counter'],
    ['tickstream_bus_subscribe_total', 'counter'],
    ['tickstream_bus_unsubscribe_total', 'counter'],
    ['tickstream_sessions_registered_total', 'counter'],
    ['tickstream_sessions_deactivated_total', 'counter'],
    ['tickstream_prices_received_total', 'counter'],
    ['tickstream_bus_messages_invalid_total', 'counter'],
    ['tickstream_events_sent_total', 'counter'],
    ['tickstream_price_updates_conflated_total', 'counter']
  ]) {
    t.match(res.text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`)
  }
  t.match(res.text, /^process_cpu_seconds_total /m, 'default process metrics too')
})

t.test('the metrics follow sessions, streams, subscriptions and events', async (t) => {
  const { app, baseUrl } = await startApp(t)
  await publish(app, [{ ticker: 'AAPL', price: 1 }])
  const a = await register(baseUrl, 'alice', ['AAPL', 'MSFT'])
  const b = await register(baseUrl, 'bob', ['AAPL'])
  const client = await SseClient.open(baseUrl, a.streamUrl)
  await client.next()
  await publish(app, [{ ticker: 'MSFT', price: 2 }, { ticker: 'MSFT', price: 3 }, { ticker: 'TSLA', price: 4 }])
  await client.waitFor((event) => event.event === 'prices')
  let values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_sessions_active'), 2)
  t.equal(metric(values, 'tickstream_streams_open'), 1)
  t.equal(metric(values, 'tickstream_bus_subscriptions'), 2, 'AAPL and MSFT, shared')
  t.equal(metric(values, 'tickstream_bus_subscribe_total'), 2)
  t.equal(metric(values, 'tickstream_sessions_registered_total'), 2)
  t.equal(metric(values, 'tickstream_prices_received_total'), 2, 'the two MSFT prices; AAPL before anyone watched and TSLA are not received')
  t.equal(metric(values, 'tickstream_price_updates_conflated_total'), 1)
  t.equal(metric(values, 'tickstream_events_sent_total'), 2, 'snapshot and one prices event')
  t.equal(metric(values, 'tickstream_priced_tickers'), 3, 'AAPL, MSFT and TSLA have a price, watched or not')

  await request(baseUrl, `/sessions/${b.sessionId}`, { method: 'DELETE' })
  client.close()
  await client.finished
  await app.streams.whenResponsesClosed()
  values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_sessions_active'), 0)
  t.equal(metric(values, 'tickstream_streams_open'), 0)
  t.equal(metric(values, 'tickstream_bus_subscriptions'), 0)
  t.equal(metric(values, 'tickstream_bus_unsubscribe_total'), 2)
  t.equal(metric(values, 'tickstream_sessions_deactivated_total{reason="deleted"}'), 1)
  t.equal(metric(values, 'tickstream_sessions_deactivated_total{reason="client_closed"}'), 1)
  t.equal(metric(values, 'tickstream_priced_tickers'), 3, 'prices outlive the sessions: a later snapshot needs them')
})
