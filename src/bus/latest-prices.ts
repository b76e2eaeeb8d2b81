import type { PriceUpdate } from '../price.js'

/**
 * The latest price of each ticker this instance published or received: the snapshot's source
 * in embedded mode, and its complement to the shared cache in Redis mode.
 *
 * "Latest" is the bus's order, never the price's `ts`: `ts` is the publisher's clock (or
 * none), and a price published later may carry a smaller one.
 *
 * Nothing is ever forgotten: the contract's snapshot holds the latest price *ever* published
 * of each ticker. The map grows with the symbols publishers use, and only holders of
 * `PUBLISH_TOKEN` or of Redis can publish; clients only choose among them.
 *
 * A remembered price is **current** when it came off the bus after the ticker's subscription
 * was confirmed in effect, with no unsubscribe or dropped connection since: every price
 * published after it comes the same way and takes its place, so no other source knows a later
 * one. Any other remembered price may have been passed by one this instance never saw: one
 * published here while nothing watched the ticker, one received before the subscription ended
 * or the connection dropped, or one still in flight from an earlier subscription when the
 * ticker was watched again. In Redis mode the shared cache knows better than those.
 */
export class LatestPrices {
  private readonly byTicker = new Map<string, PriceUpdate>()
  /** Tickers whose subscription is confirmed in effect and unbroken since. */
  private readonly confirmed = new Set<string>()
  /** Tickers whose remembered price is current (see above). */
  private readonly current = new Set<string>()

  get size (): number {
    return this.byTicker.size
  }

  /** The ticker's subscription is in effect: what it receives from now on is the latest. */
  subscriptionConfirmed (ticker: string): void {
    this.confirmed.add(ticker)
  }

  /** A price delivered by the bus to this instance's watchers. */
  received (update: PriceUpdate): void {
    this.byTicker.set(update.ticker, update)
    if (this.confirmed.has(update.ticker)) this.current.add(update.ticker)
    else this.current.delete(update.ticker)
  }

  /**
   * A price this instance published, once the publish went through. A current price stays:
   * it came off the bus, so it is this price on its way back or one published after it, and
   * if it is an earlier one, this price is still on its way and will take its place.
   */
  published (update: PriceUpdate): void {
    if (!this.current.has(update.ticker)) this.byTicker.set(update.ticker, update)
  }

  /** This instance no longer receives `ticker`: prices published from now on pass it by. */
  subscriptionEnded (ticker: string): void {
    this.confirmed.delete(ticker)
    this.current.delete(ticker)
  }

  /** The bus connection dropped: prices published meanwhile were never received. */
  subscriptionsInterrupted (): void {
    this.confirmed.clear()
    this.current.clear()
  }

  /**
   * The latest price of `ticker` given the shared cache's (`undefined` when there is none,
   * or no cache): this instance's own if it is current, the cache's otherwise, and this
   * instance's as the last resort.
   */
  newest (ticker: string, shared: PriceUpdate | undefined): PriceUpdate | undefined {
    const local = this.byTicker.get(ticker)
    if (local !== undefined && this.current.has(ticker)) return local
    return shared ?? local
  }
}
