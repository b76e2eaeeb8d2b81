import t from 'tap'
import { LATEST_PRICES_KEY } from '../../src/bus/redis-transport.js'
import { startApp } from '../helpers/app.js'
import { register } from '../helpers/http.js'
import { redisClient, redisReady, SHARED_REDIS_URL, uniqueTicker } from '../helpers/redis.js'
import { spawnServer } from '../helpers/server-process.js'
import { SseClient } from '../helpers/sse-client.js'

t.test('npm run feed publishes the simulated feed into Redis, for every instance', async (t) => {
  const tickers = [uniqueTicker('F'), uniqueTicker('F')]
  const subscriber = redisClient(t)
  await subscriber.subscribe(...tickers.map((ticker) => `prices:${ticker}`))
  const firstMessage = new Promise<{ channel: string, message: string }>((resolve) => subscriber.once('message', (channel: string, message: string) => resolve({ channel, message })))
  const feed = spawnServer({ REDIS_URL: SHARED_REDIS_URL, FEED_TICKERS: tickers.join(','), FEED_RATE: '100' }, 'src/feed-publisher.ts')
  t.teardown(() => { feed.child.kill('SIGKILL') })
  const { channel, message } = await firstMessage
  const price = JSON.parse(message)
  t.equal(channel, `prices:${price.ticker}`)
  t.ok(tickers.includes(price.ticker), 'one of FEED_TICKERS')
  t.ok(price.price > 0 && Number.isFinite(price.ts))
  const cached = await redisClient(t).hget(LATEST_PRICES_KEY, price.ticker)
  t.ok(cached !== null, 'the latest-price cache is written too')
  feed.child.kill('SIGTERM')
  t.equal((await feed.exited).code, 0, 'stops cleanly on SIGTERM')
})

t.test('npm run feed refuses to run without REDIS_URL', async (t) => {
  const feed = spawnServer({ LOG_LEVEL: 'silent' }, 'src/feed-publisher.ts')
  const { code } = await feed.exited
  t.equal(code, 1)
  t.match(feed.stderr(), /REDIS_URL/)
})

t.test('garbage in the shared latest-price cache is skipped, not served', async (t) => {
  const { app, baseUrl } = await startApp(t, { REDIS_URL: SHARED_REDIS_URL })
  await redisReady(app)
  const admin = redisClient(t)
  const [bad, wrong, good] = [uniqueTicker('G'), uniqueTicker('G'), uniqueTicker('G')]
  await admin.hset(LATEST_PRICES_KEY, bad, '{not json', wrong, JSON.stringify({ ticker: good, price: 1, ts: 1 }), good, JSON.stringify({ ticker: good, price: 2, ts: 2 }))
  t.teardown(async () => { await admin.hdel(LATEST_PRICES_KEY, bad, wrong, good) })
  const session = await register(baseUrl, 'alice', [bad, wrong, good])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  const snapshot = await client.next()
  t.same(snapshot.json, { prices: [{ ticker: good, price: 2, ts: 2 }] })
})
