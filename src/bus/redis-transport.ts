import type { Redis } from 'ioredis'
import type { Clock } from '../clock.js'
import { RateLimitedWarning, type Logger } from '../logger.js'
import { toPriceUpdate, type PriceUpdate } from '../price.js'
import type { BusInbox, BusTransport } from './price-bus.js'

/** Prices travel on `prices:<TICKER>` (contract). */
export const PRICE_CHANNEL_PREFIX = 'prices:'
/** Hash of ticker -> latest price JSON, written with every publish, read for snapshots. */
export const LATEST_PRICES_KEY = 'tickstream:latest-prices'

export function priceChannel (ticker: string): string {
  return `${PRICE_CHANNEL_PREFIX}${ticker}`
}

/** Redis accepts many channels per SUBSCRIBE; chunks keep one command reasonably small. */
const SUBSCRIBE_CHUNK = 500
const REDIS_WARN_INTERVAL_MS = 10_000

/**
 * Publishes prices to every instance: each price's latest-value entry and its message go in
 * one MULTI, so no other publisher's write can fall between them. A subscriber that got a
 * message therefore finds at least that price in the cache, and the cache and the message
 * order agree on which price is the latest.
 */
export async function publishToRedis (commands: Redis, updates: readonly PriceUpdate[]): Promise<void> {
  if (updates.length === 0) return
  const transaction = commands.multi()
  for (const update of updates) {
    transaction.hset(LATEST_PRICES_KEY, update.ticker, update.json)
    transaction.publish(priceChannel(update.ticker), update.json)
  }
  const results = await transaction.exec()
  /* c8 ignore next 2 -- exec() resolves null only when a WATCHed key changed; we watch none */
  if (results === null) throw new Error('redis transaction aborted')
  for (const [err] of results) if (err !== null) throw err
}

export interface RedisTransportOptions {
  /** Commands: publishing and the latest-price cache. */
  commands: Redis
  /** The one connection in subscriber mode, for every ticker this instance watches. */
  subscriber: Redis
  clock: Clock
  logger: Logger
}

/**
 * The bus over Redis pub/sub. `wanted` holds the tickers this instance must be subscribed
 * to, kept in step with the ref counts synchronously; the subscriber connection follows it:
 * one SUBSCRIBE when a ticker is first wanted, one UNSUBSCRIBE when it no longer is, and the
 * whole set again on every (re)connect. Commands on one connection run in order, so a ticker
 * released and wanted again before Redis answers ends up subscribed.
 *
 * ioredis' own `autoResubscribe` and offline queue are off: they would replay what was asked
 * while disconnected, including subscriptions since released. After every reconnect the
 * subscriptions are dropped and rebuilt from `wanted` (UNSUBSCRIBE with no channel, then
 * SUBSCRIBE): that is the one rule, and the restart and resend tests prove it.
 */
export class RedisTransport implements BusTransport {
  /**
   * Each wanted ticker with the number of the SUBSCRIBE that last asked for it: only that
   * SUBSCRIBE's reply confirms the subscription (`BusInbox.subscriptionConfirmed`), never the
   * reply to one sent before an unsubscribe or a reconnect.
   */
  private readonly wanted = new Map<string, number>()
  private subscribeRequests = 0
  /**
   * A reconnect, not the first connect, may find subscriptions it did not ask for. True from
   * the start if the connection was already made (then the next 'ready' is a reconnect).
   */
  private connectedBefore: boolean
  private readonly commands: Redis
  private readonly subscriber: Redis
  private readonly clock: Clock
  private readonly logger: Logger
  private readonly redisWarning: RateLimitedWarning

  constructor (private readonly inbox: BusInbox, options: RedisTransportOptions) {
    this.commands = options.commands
    this.subscriber = options.subscriber
    this.clock = options.clock
    this.logger = options.logger
    this.redisWarning = new RateLimitedWarning(options.logger, REDIS_WARN_INTERVAL_MS, options.clock)
    this.connectedBefore = this.subscriber.status === 'ready'
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message))
    // Whatever is published until the resubscription below passes this instance by.
    this.subscriber.on('close', () => this.inbox.subscriptionsInterrupted())
    // ioredis re-sends the commands a dropped connection left unanswered before it emits
    // 'ready' (on the next tick): a SUBSCRIBE among them may be for a ticker released since.
    // The rebuild from `wanted` undoes them.
    this.subscriber.on('ready', () => this.resubscribe())
  }

  get isReady (): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready'
  }

  subscribe (ticker: string): void {
    const request = ++this.subscribeRequests
    this.wanted.set(ticker, request)
    if (this.subscriber.status === 'ready') this.sendSubscribe([ticker], request)
  }

  unsubscribe (ticker: string): void {
    this.wanted.delete(ticker)
    if (this.subscriber.status === 'ready') void this.send('unsubscribe', [priceChannel(ticker)])
  }

  async publish (updates: readonly PriceUpdate[]): Promise<void> {
    await publishToRedis(this.commands, updates)
  }

  async latest (tickers: readonly string[]): Promise<PriceUpdate[]> {
    if (tickers.length === 0) return []
    const values = await this.commands.hmget(LATEST_PRICES_KEY, ...tickers)
    const now = this.clock()
    const updates: PriceUpdate[] = []
    for (const [index, value] of values.entries()) {
      const ticker = tickers[index]
      if (value === null || ticker === undefined) continue
      // The cache is written by our publishers, but Redis is shared: check it like a message.
      let parsed: unknown
      try {
        parsed = JSON.parse(value)
      } catch {
        continue
      }
      const result = toPriceUpdate(parsed, now, ticker)
      if (result.ok) updates.push(result.update)
    }
    return updates
  }

  async close (): Promise<void> {
    // The connections belong to the plugin that created them; it closes them.
    this.wanted.clear()
  }

  private onMessage (channel: string, message: string): void {
    if (!channel.startsWith(PRICE_CHANNEL_PREFIX)) return
    this.inbox.deliverMessage(channel.slice(PRICE_CHANNEL_PREFIX.length), message)
  }

  /**
   * After every (re)connect: nothing but `wanted` stays subscribed. Every wanted ticker is
   * asked for under a new number, so the replies to what ioredis re-sent from the dropped
   * connection (or to a SUBSCRIBE made between its 'ready' status and this event) confirm
   * nothing: the UNSUBSCRIBE below ends those subscriptions, and their replies come first.
   */
  private resubscribe (): void {
    if (this.connectedBefore) void this.send('unsubscribe', [])
    this.connectedBefore = true
    const request = ++this.subscribeRequests
    const tickers = [...this.wanted.keys()]
    for (const ticker of tickers) this.wanted.set(ticker, request)
    for (let start = 0; start < tickers.length; start += SUBSCRIBE_CHUNK) {
      this.sendSubscribe(tickers.slice(start, start + SUBSCRIBE_CHUNK), request)
    }
    if (tickers.length > 0) this.logger.info({ tickers: tickers.length }, 'subscribed to watched tickers on redis')
  }

  /**
   * Redis writes every message published after a SUBSCRIBE took effect after its reply, so a
   * ticker still wanted under this request is confirmed once the reply is in. (The promise
   * settles a microtask after the reply is read: a message read with it counts as not
   * current, and a snapshot then takes the shared cache's price, as it would anyway.)
   */
  private sendSubscribe (tickers: readonly string[], request: number): void {
    const connection = this.subscriber.stream
    void this.send('subscribe', tickers.map(priceChannel)).then((done) => {
      // A connection closed in the same turn as the reply was read: its 'close' came first.
      if (!done || this.subscriber.stream !== connection || connection.destroyed) return
      for (const ticker of tickers) if (this.wanted.get(ticker) === request) this.inbox.subscriptionConfirmed(ticker)
    })
  }

  /** Resolves whether Redis accepted the command; never rejects. */
  private async send (command: 'subscribe' | 'unsubscribe', channels: string[]): Promise<boolean> {
    try {
      await this.subscriber[command](...channels)
      return true
    } catch (err) {
      // A reconnect re-subscribes everything wanted, so a failed command needs no retry here.
      this.redisWarning.warn({ err, command, channels: channels.length }, 'redis subscription command failed')
      return false
    }
  }
}
