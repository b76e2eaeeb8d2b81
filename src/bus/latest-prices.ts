import type { PriceUpdate } from '../price.js'

/**
 * The latest price of each ticker this instance published or received: the snapshot's source
 * in embedded mode, and its local complement in Redis mode. Bounded so that publishers
 * inventing symbols cannot grow it without limit: past `capacity` the least recently
 * updated ticker is forgotten, so live symbols stay while invented ones churn out.
 */
export class LatestPrices {
  private readonly byTicker = new Map<string, PriceUpdate>()

  constructor (private readonly capacity = 20_000) {}

  get size (): number {
    return this.byTicker.size
  }

  remember (update: PriceUpdate): void {
    // Delete then set moves the ticker to the end: Map order is least recently updated first.
    if (!this.byTicker.delete(update.ticker) && this.byTicker.size >= this.capacity) {
      const oldest = this.byTicker.keys().next()
      if (oldest.done !== true) this.byTicker.delete(oldest.value)
    }
    this.byTicker.set(update.ticker, update)
  }

  get (ticker: string): PriceUpdate | undefined {
    return this.byTicker.get(ticker)
  }
}
