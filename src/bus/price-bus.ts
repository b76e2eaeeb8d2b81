import type { Clock } from '../clock.js'
import { RateLimitedWarning, type Logger } from '../logger.js'
import { MAX_PRICE_BYTES, toPriceUpdate, type PriceUpdate } from '../price.js'
import { LatestPrices } from './latest-prices.js'
import { TickerSubscriptions, type PriceListener, type SubscriptionTarget, type Watch } from './ticker-subscriptions.js'

/** Where a transport hands what it receives. */
export interface BusInbox {
  /** An already validated price (the in-process transport). */
  deliver(update: PriceUpdate): void
  /** A raw message from the ticker's channel (an external transport), validated here once. */
  deliverMessage(ticker: string, message: string | Buffer): void
  /** `ticker`'s subscription is in effect: every price published from now on arrives here. */
  subscriptionConfirmed(ticker: string): void
  /** The transport's subscriptions lapsed (a dropped connection): prices may have been missed. */
  subscriptionsInterrupted(): void
}

/**
 * Moves prices between publishers and this instance. The in-process transport loops them
 * back; the Redis one goes through Redis pub/sub. Subscription calls are fire-and-forget:
 * a transport owns its retries and must re-subscribe everything after a reconnect.
 */
export interface BusTransport extends SubscriptionTarget {
  publish(updates: readonly PriceUpdate[]): Promise<void>
  /** Latest prices known beyond this instance (a shared cache); empty when there is none. */
  latest(tickers: readonly string[]): Promise<PriceUpdate[]>
  /** Whether the transport can do its job now (`/ready`). */
  readonly isReady: boolean
  close(): Promise<void>
}

export interface BusCounters {
  pricesReceived: number
  messagesInvalid: number
}

export interface PriceBusOptions {
  createTransport: (inbox: BusInbox) => BusTransport
  clock: Clock
  logger: Logger
}

const INVALID_MESSAGE_WARN_INTERVAL_MS = 10_000

export class PriceBus implements BusInbox {
  readonly counters: BusCounters = { pricesReceived: 0, messagesInvalid: 0 }
  readonly subscriptions: TickerSubscriptions
  private readonly transport: BusTransport
  private readonly latestSeen = new LatestPrices()
  private readonly clock: Clock
  private readonly logger: Logger
  private readonly invalidMessageWarning: RateLimitedWarning

  constructor (options: PriceBusOptions) {
    this.clock = options.clock
    this.logger = options.logger
    this.invalidMessageWarning = new RateLimitedWarning(options.logger, INVALID_MESSAGE_WARN_INTERVAL_MS, options.clock)
    this.transport = options.createTransport(this)
    this.subscriptions = new TickerSubscriptions({
      subscribe: (ticker) => this.transport.subscribe(ticker),
      unsubscribe: (ticker) => {
        // From here on a price of this ticker can be published without this instance seeing it.
        this.latestSeen.subscriptionEnded(ticker)
        this.transport.unsubscribe(ticker)
      }
    })
  }

  get isReady (): boolean {
    return this.transport.isReady
  }

  /** Tickers with a remembered latest price: the snapshot's memory, which only grows. */
  get pricedTickerCount (): number {
    return this.latestSeen.size
  }

  /**
   * Publishes validated prices to every instance, this one included. A price is remembered
   * here only once the publish went through: one that fails (Redis down, a 503) leaves this
   * instance's snapshots as they were. It never replaces a price that came off the bus since
   * (`LatestPrices.published`): that one is the same price or a newer one.
   */
  async publish (updates: readonly PriceUpdate[]): Promise<void> {
    await this.transport.publish(updates)
    for (const update of updates) this.latestSeen.published(update)
  }

  /** Starts `listener` watching `tickers` (distinct); `unwatch` with what this returns ends it. */
  watch (tickers: readonly string[], listener: PriceListener): Watch {
    return this.subscriptions.add(tickers, listener)
  }

  /** Ends a watch; the last watch of a ticker releases its subscription. Idempotent. */
  unwatch (watch: Watch): void {
    this.subscriptions.remove(watch)
  }

  deliver (update: PriceUpdate): void {
    // A message can still arrive for a ticker just released; nobody wants it.
    if (!this.subscriptions.deliver(update.ticker, update, this.reportListenerError)) return
    this.counters.pricesReceived++
    this.latestSeen.received(update)
  }

  subscriptionConfirmed (ticker: string): void {
    this.latestSeen.subscriptionConfirmed(ticker)
  }

  subscriptionsInterrupted (): void {
    this.latestSeen.subscriptionsInterrupted()
  }

  // Listeners only touch memory; this keeps one bug from starving the others.
  private readonly reportListenerError = (err: unknown, update: PriceUpdate): void => {
    this.logger.error({ err, ticker: update.ticker }, 'price listener failed')
  }

  deliverMessage (ticker: string, message: string | Buffer): void {
    const result = this.parseMessage(ticker, message)
    if (result.ok) {
      this.deliver(result.update)
      return
    }
    this.counters.messagesInvalid++
    this.invalidMessageWarning.warn({ ticker, reason: result.reason }, 'dropped malformed bus message')
  }

  /**
   * The latest price published of each ticker that has one, in the order asked: this
   * instance's own when it is known to be the latest, the shared cache's otherwise
   * (`LatestPrices.newest`). Never rejects: without the shared cache it answers from what this
   * instance saw.
   */
  async latest (tickers: readonly string[]): Promise<PriceUpdate[]> {
    let shared: PriceUpdate[] = []
    try {
      shared = await this.transport.latest(tickers)
    } catch (err) {
      this.logger.warn({ err }, 'shared latest-price cache unavailable; snapshot from local prices')
    }
    const sharedByTicker = new Map(shared.map((update) => [update.ticker, update]))
    const result: PriceUpdate[] = []
    for (const ticker of tickers) {
      const newest = this.latestSeen.newest(ticker, sharedByTicker.get(ticker))
      if (newest !== undefined) result.push(newest)
    }
    return result
  }

  async close (): Promise<void> {
    await this.transport.close()
  }

  private parseMessage (ticker: string, message: string | Buffer): { ok: true, update: PriceUpdate } | { ok: false, reason: string } {
    const size = typeof message === 'string' ? Buffer.byteLength(message) : message.length
    if (size > MAX_PRICE_BYTES) return { ok: false, reason: `larger than ${MAX_PRICE_BYTES} bytes` }
    let parsed: unknown
    try {
      parsed = JSON.parse(message.toString())
    } catch {
      return { ok: false, reason: 'not JSON' }
    }
    const result = toPriceUpdate(parsed, this.clock(), ticker)
    return result.ok ? result : { ok: false, reason: result.reason }
  }
}
