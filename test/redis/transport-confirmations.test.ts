import { once } from 'node:events'
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { BusInbox } from '../../src/bus/price-bus.js'
import { RedisTransport } from '../../src/bus/redis-transport.js'
import { silentLogger } from '../../src/logger.js'
import { numsub, redisClient, SHARED_REDIS_URL, uniqueTicker } from '../helpers/redis.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'

/*
 * When the Redis transport tells the bus a subscription is in effect, and when it is not any
 * more: the bus takes its own remembered price as the latest only for a ticker whose
 * subscription the latest SUBSCRIBE's reply confirmed, with no drop since (latest-prices.ts).
 */

/** Keeps what the transport tells the bus about its subscriptions. */
class RecordingInbox implements BusInbox {
  readonly confirmed: string[] = []
  interrupted = 0
  private readonly waiters: Array<{ count: number, resolve: () => void }> = []

  deliver (): void {}
  deliverMessage (): void {}

  subscriptionConfirmed (ticker: string): void {
    this.confirmed.push(ticker)
    for (const waiter of [...this.waiters]) {
      if (this.confirmed.length < waiter.count) continue
      this.waiters.splice(this.waiters.indexOf(waiter), 1)
      waiter.resolve()
    }
  }

  subscriptionsInterrupted (): void {
    this.interrupted++
  }

  /** Resolves once `count` confirmations have come in all. */
  async confirmations (count: number): Promise<void> {
    if (this.confirmed.length >= count) return
    await new Promise<void>((resolve) => this.waiters.push({ count, resolve }))
  }
}

/** A transport on its own two connections, with plugins/redis.ts' options that matter here (no resubscribe, no offline queue). */
async function transportOn (t: Test, url: string): Promise<{ transport: RedisTransport, inbox: RecordingInbox, subscriber: Redis }> {
  const connect = (): Redis => redisClient(t, url, { autoResubscribe: false, enableOfflineQueue: false, retryStrategy: () => 50 })
  const commands = connect()
  const subscriber = connect()
  await Promise.all([commands, subscriber].map(async (client) => { if (client.status !== 'ready') await once(client, 'ready') }))
  const inbox = new RecordingInbox()
  const transport = new RedisTransport(inbox, { commands, subscriber, clock: () => Date.now(), logger: silentLogger })
  t.teardown(async () => { await transport.close() })
  return { transport, inbox, subscriber }
}

/** Every reply to what was sent before has been read, and what it settled has run. */
async function settled (subscriber: Redis): Promise<void> {
  await subscriber.ping()
  await new Promise((resolve) => setImmediate(resolve))
}

t.test('only the reply to the latest SUBSCRIBE of a ticker confirms it, and only while it is wanted', async (t) => {
  const { transport, inbox, subscriber } = await transportOn(t, SHARED_REDIS_URL)
  const rewatched = uniqueTicker('S')
  const released = uniqueTicker('S')
  transport.subscribe(rewatched)
  transport.unsubscribe(rewatched)
  transport.subscribe(rewatched)
  transport.subscribe(released)
  transport.unsubscribe(released)
  await inbox.confirmations(1)
  await settled(subscriber)
  t.strictSame(inbox.confirmed, [rewatched],
    'confirmed once, by the second SUBSCRIBE: the first one\'s reply came after the ticker was released; the released ticker not at all')
})

t.test('a dropped subscriber connection interrupts; the rebuild after it confirms each ticker still wanted once', async (t) => {
  const proxy = await tcpProxy(t)
  const { transport, inbox, subscriber } = await transportOn(t, proxy.url)
  const kept = uniqueTicker('K')
  const released = uniqueTicker('L')
  const inFlight = uniqueTicker('F')
  const inFlightReleased = uniqueTicker('R')
  transport.subscribe(kept)
  transport.subscribe(released)
  await inbox.confirmations(2)
  t.equal(inbox.interrupted, 0)

  // SUBSCRIBEs that Redis never gets: ioredis sends them again after the reconnect.
  proxy.stopForwarding()
  transport.subscribe(inFlight)
  transport.subscribe(inFlightReleased)
  // A plain listener: once() would reject on the connection error the cut may raise first.
  const closed = new Promise<void>((resolve) => subscriber.once('close', () => resolve()))
  proxy.cutConnections()
  await closed
  t.equal(inbox.interrupted, 1, 'the drop is reported at once')
  transport.unsubscribe(released)
  transport.unsubscribe(inFlightReleased)
  proxy.release()
  await inbox.confirmations(4)
  await settled(subscriber)
  t.strictSame(inbox.confirmed.slice(2).sort(), [inFlight, kept].sort(),
    'each ticker still wanted is confirmed once, by the rebuild: not by the reply to the re-sent SUBSCRIBE, and the released ones not at all')
  const counts = await numsub(redisClient(t), [inFlight, kept, inFlightReleased, released].map((ticker) => `prices:${ticker}`))
  t.strictSame([...counts.values()], [1, 1, 0, 0], 'Redis agrees: the re-sent SUBSCRIBE of a ticker released meanwhile did not stay')
})
