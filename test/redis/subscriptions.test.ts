import t from 'tap'
import type { Watch } from '../../src/bus/ticker-subscriptions.js'
import type { PriceUpdate } from '../../src/price.js'
import { startApp } from '../helpers/app.js'
import { metric, metrics, register, request } from '../helpers/http.js'
import { assertNothingLeft } from '../helpers/leaks.js'
import { numsub, redisClient, redisReady, SHARED_REDIS_URL, uniqueTicker } from '../helpers/redis.js'
import { SseClient } from '../helpers/sse-client.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'

/** Resolves when the next message arrives on `channel`: proof that Redis routes it to us. */
async function roundTrip (app: Awaited<ReturnType<typeof startApp>>['app'], publisher: ReturnType<typeof redisClient>, ticker: string): Promise<PriceUpdate> {
  const received = new Promise<PriceUpdate>((resolve) => {
    const watch = app.bus.watch([ticker], (update) => {
      app.bus.unwatch(watch)
      resolve(update)
    })
  })
  // The watch above may have sent a SUBSCRIBE; a PING on the same connection returns after it.
  await app.redis?.subscriber.ping()
  await publisher.publish(`prices:${ticker}`, JSON.stringify({ ticker, price: 1 }))
  return await received
}

t.test('after churn of many sessions over a few tickers, every channel has 0 subscribers', async (t) => {
  const { app, baseUrl } = await startApp(t, { REDIS_URL: SHARED_REDIS_URL, MAX_SESSIONS_PER_USER: '2' })
  await redisReady(app)
  const admin = redisClient(t)
  const tickers = Array.from({ length: 4 }, () => uniqueTicker('C'))
  const channels = tickers.map((ticker) => `prices:${ticker}`)

  const pick = (i: number): string[] => [tickers[i % 4] ?? '', tickers[(i * 3 + 1) % 4] ?? '']
  // Register in waves (eviction churns too), stream some, delete some, close some.
  const open: SseClient[] = []
  for (let i = 0; i < 120; i++) {
    const session = await register(baseUrl, `churn-${i % 15}`, pick(i))
    if (i % 3 === 0) {
      const client = await SseClient.open(baseUrl, session.streamUrl)
      await client.next()
      open.push(client)
    } else if (i % 3 === 1) {
      await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })
    }
  }
  await app.redis?.subscriber.ping()
  const during = await numsub(admin, channels)
  t.comment(`PUBSUB NUMSUB during churn: ${JSON.stringify(Object.fromEntries(during))}`)
  for (const channel of channels) t.equal(during.get(channel), 1, `${channel}: one subscription, shared by every local session`)

  for (const client of open) client.close()
  await app.streams.whenResponsesClosed()
  await app.drain(2000)
  await app.redis?.subscriber.ping()
  const after = await numsub(admin, channels)
  t.comment(`PUBSUB NUMSUB after churn: ${JSON.stringify(Object.fromEntries(after))}`)
  for (const channel of channels) t.equal(after.get(channel), 0, `${channel}: released`)
  const left = await admin.call('PUBSUB', 'CHANNELS', 'prices:C*') as string[]
  t.same(left.filter((channel) => channels.includes(channel)), [], 'PUBSUB CHANNELS lists none of them')
  const values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_bus_subscribe_total'), metric(values, 'tickstream_bus_unsubscribe_total'))
  await assertNothingLeft(t, app, baseUrl)
})

t.test('the last watcher leaves and a new one arrives before Redis answers: still subscribed', async (t) => {
  const { app } = await startApp(t, { REDIS_URL: SHARED_REDIS_URL })
  await redisReady(app)
  const publisher = redisClient(t)
  const ticker = uniqueTicker('J')
  const first = app.bus.watch([ticker], () => {})
  // UNSUBSCRIBE and SUBSCRIBE leave in the same tick, before any reply.
  app.bus.unwatch(first)
  const second = app.bus.watch([ticker], () => {})
  const update = await roundTrip(app, publisher, ticker)
  t.equal(update.ticker, ticker, 'messages still arrive')
  t.equal((await numsub(publisher, [`prices:${ticker}`])).get(`prices:${ticker}`), 1)
  app.bus.unwatch(second)
  await app.redis?.subscriber.ping()
  t.equal((await numsub(publisher, [`prices:${ticker}`])).get(`prices:${ticker}`), 0, 'released when the last one leaves')
})

t.test('many watchers joining and leaving the same tickers concurrently end consistent', async (t) => {
  const { app } = await startApp(t, { REDIS_URL: SHARED_REDIS_URL })
  await redisReady(app)
  const admin = redisClient(t)
  const tickers = [uniqueTicker('K'), uniqueTicker('K'), uniqueTicker('K')]
  // A seeded sequence (deterministic randomness) of joins and leaves over three tickers.
  let seed = 12345
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  const watching: Array<{ ticker: string, watch: Watch }> = []
  for (let step = 0; step < 3000; step++) {
    if (watching.length > 0 && random() < 0.5) {
      const [left] = watching.splice(Math.floor(random() * watching.length), 1)
      if (left !== undefined) app.bus.unwatch(left.watch)
    } else {
      const ticker = tickers[Math.floor(random() * 3)] ?? ''
      watching.push({ ticker, watch: app.bus.watch([ticker], () => {}) })
    }
    // Every few steps let the event loop send what was queued, so commands interleave with replies.
    if (step % 97 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  const subs = app.bus.subscriptions
  t.ok(subs.counters.subscribeTotal >= subs.counters.unsubscribeTotal, 'counts never go negative')
  await app.redis?.subscriber.ping()
  const counts = await numsub(admin, tickers.map((ticker) => `prices:${ticker}`))
  for (const ticker of tickers) {
    const watched = watching.some((entry) => entry.ticker === ticker)
    t.equal(counts.get(`prices:${ticker}`), watched ? 1 : 0, `${ticker}: subscribed exactly when watched (${watched})`)
  }
  for (const entry of watching.splice(0)) app.bus.unwatch(entry.watch)
  await app.redis?.subscriber.ping()
  const after = await numsub(admin, tickers.map((ticker) => `prices:${ticker}`))
  t.same([...after.values()], [0, 0, 0], 'all released')
  t.equal(subs.counters.subscribeTotal, subs.counters.unsubscribeTotal)
})

t.test('a SUBSCRIBE a dropped connection left unanswered does not outlive the last session of its ticker', async (t) => {
  // A proxy in front of the shared Redis: this server's connections can be cut alone.
  const proxy = await tcpProxy(t)
  // The Redis-backed rate limiter would wait on the unanswering connection too.
  const { app, baseUrl } = await startApp(t, { REDIS_URL: proxy.url, RATE_LIMIT_MAX: '0' })
  await redisReady(app)
  const admin = redisClient(t)
  const ticker = uniqueTicker('R')
  const channel = `prices:${ticker}`

  proxy.stopForwarding()
  const session = await register(baseUrl, 'resend', [ticker])
  // The SUBSCRIBE went out and was never answered. Now the connection drops; the reconnect
  // is held until the session is gone, so the DELETE cannot send an UNSUBSCRIBE.
  const dropped = new Promise<void>((resolve) => app.redis?.subscriber.once('close', () => resolve()))
  proxy.cutConnections()
  await dropped
  t.equal((await request(baseUrl, `/sessions/${session.sessionId}`, { method: 'DELETE' })).status, 204)
  proxy.release()
  await redisReady(app)
  // ioredis re-sends the unanswered SUBSCRIBE on 'ready'; a PING queued after the rebuild returns after all of it.
  await new Promise((resolve) => process.nextTick(resolve))
  await app.redis?.subscriber.ping()
  t.equal((await numsub(admin, [channel])).get(channel), 0, 'after the reconnect, nothing is subscribed to it')
  const values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_bus_subscriptions'), 0)
  t.equal(metric(values, 'tickstream_bus_subscribe_total'), metric(values, 'tickstream_bus_unsubscribe_total'))
})
