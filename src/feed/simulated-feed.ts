import type { Clock } from '../clock.js'
import { RateLimitedWarning, type Logger } from '../logger.js'
import { priceUpdate, type PriceUpdate } from '../price.js'

export interface SimulatedFeedOptions {
  tickers: readonly string[]
  /** Updates per second across all tickers. */
  ratePerSecond: number
  publish: (updates: PriceUpdate[]) => Promise<void>
  clock: Clock
  logger: Logger
  /** In [0, 1). Injected so tests can make the walk deterministic. */
  random?: () => number
}

/** The feed publishes in small batches rather than one timer per update. */
const MIN_TICK_MS = 20
/** Each step moves a price by up to this fraction, up or down. */
const MAX_STEP = 0.002

/**
 * A random walk over a fixed symbol list, standing in for a market data source in embedded
 * mode and in demos (`npm run feed` publishes it into Redis).
 */
export class SimulatedFeed {
  private readonly prices = new Map<string, number>()
  private readonly random: () => number
  private readonly tickMs: number
  private timer: NodeJS.Timeout | undefined
  private owedUpdates = 0
  private published = 0
  private readonly publishWarning: RateLimitedWarning

  constructor (private readonly options: SimulatedFeedOptions) {
    this.random = options.random ?? Math.random
    this.tickMs = Math.max(MIN_TICK_MS, Math.floor(1000 / options.ratePerSecond))
    // While the bus is down every tick fails; one warning per 10 s is enough.
    this.publishWarning = new RateLimitedWarning(options.logger, 10_000, options.clock)
    for (const ticker of options.tickers) this.prices.set(ticker, roundCents(20 + this.random() * 480))
  }

  get publishedCount (): number {
    return this.published
  }

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => this.tick(), this.tickMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Publishes the updates owed for one tick (rate x tick length, carrying the fraction). */
  tick (): void {
    this.owedUpdates += (this.options.ratePerSecond * this.tickMs) / 1000
    const count = Math.floor(this.owedUpdates)
    this.owedUpdates -= count
    if (count === 0) return
    const updates = this.nextUpdates(count)
    this.published += updates.length
    this.options.publish(updates).catch((err: unknown) => this.publishWarning.warn({ err }, 'simulated feed publish failed'))
  }

  nextUpdates (count: number): PriceUpdate[] {
    const tickers = this.options.tickers
    const now = this.options.clock()
    const updates: PriceUpdate[] = []
    for (let i = 0; i < count; i++) {
      const ticker = tickers[Math.floor(this.random() * tickers.length)]
      /* c8 ignore next -- random() < 1 keeps the index in range */
      if (ticker === undefined) continue
      const previous = this.prices.get(ticker) ?? 100
      const next = Math.max(0.01, roundCents(previous * (1 + (this.random() * 2 - 1) * MAX_STEP)))
      this.prices.set(ticker, next)
      updates.push(priceUpdate({ ticker, price: next, ts: now }))
    }
    return updates
  }
}

function roundCents (value: number): number {
  return Math.round(value * 100) / 100
}
