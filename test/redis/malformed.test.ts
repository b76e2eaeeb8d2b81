import t from 'tap'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { redisClient, redisReady, SHARED_REDIS_URL, uniqueTicker } from '../helpers/redis.js'
import { SseClient } from '../helpers/sse-client.js'

t.test('every malformed bus message is dropped and counted; the server stays healthy', async (t) => {
  const lines: string[] = []
  const { app, baseUrl } = await startApp(t, { REDIS_URL: SHARED_REDIS_URL }, { logLines: lines })
  await redisReady(app)
  const ticker = uniqueTicker('M')
  const other = uniqueTicker('M')
  const session = await register(baseUrl, 'alice', [ticker])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  await client.next()
  const publisher = redisClient(t)
  const malformed: Array<[string, string]> = [
    ['not JSON', '{"ticker":'],
    ['plain text', 'hello'],
    ['a JSON array', `[{"ticker":"${ticker}","price":1}]`],
    ['a JSON string', '"AAPL"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['over 8 KiB', JSON.stringify({ ticker, price: 1, pad: 'x'.repeat(8 * 1024) })],
    ['ticker missing', JSON.stringify({ price: 1 })],
    ['ticker not a string', JSON.stringify({ ticker: 42, price: 1 })],
    ['ticker of another channel', JSON.stringify({ ticker: other, price: 1 })],
    ['ticker invalid', JSON.stringify({ ticker: 'NOT VALID', price: 1 })],
    ['price a string', JSON.stringify({ ticker, price: '12.5' })],
    ['price missing', JSON.stringify({ ticker })],
    ['price negative', JSON.stringify({ ticker, price: -0.01 })],
    ['price null', JSON.stringify({ ticker, price: null })],
    ['price overflowing to Infinity', `{"ticker":"${ticker}","price":1e400}`],
    ['ts null', JSON.stringify({ ticker, price: 1, ts: null })],
    ['ts a string', JSON.stringify({ ticker, price: 1, ts: '1764312345678' })],
    ['ts overflowing', `{"ticker":"${ticker}","price":1,"ts":1e999}`],
    ['__proto__ pollution attempt', `{"__proto__":{"polluted":true},"ticker":"${ticker}"}`]
  ]
  for (const [, message] of malformed) await publisher.publish(`prices:${ticker}`, message)
  // A valid price after them: once it is delivered, all of the above have been handled.
  await publisher.publish(`prices:${ticker}`, JSON.stringify({ ticker: ` ${ticker.toLowerCase()} `, price: 3.5, ts: 9 }))
  const event = await client.waitFor((e) => e.event === 'prices')
  t.same(event.json.prices, [{ ticker, price: 3.5, ts: 9 }], 'only the valid price is delivered')
  const values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_bus_messages_invalid_total'), malformed.length, `all ${malformed.length} malformed classes counted`)
  t.equal(metric(values, 'tickstream_prices_received_total'), 1)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution')
  t.equal((await request(baseUrl, '/health')).status, 200)
  t.equal((await request(baseUrl, '/ready')).status, 200)
  const warnings = lines.filter((line) => line.includes('dropped malformed bus message'))
  t.equal(warnings.length, 1, 'the warning is rate-limited: one line for the whole flood')
})
