import type { PriceUpdate } from '../price.js'

/**
 * The prices a stream has not sent yet: at most one per ticker, the latest (conflation).
 * Its size is bounded by the session's ticker count however slow the client is.
 */
export class PendingBatch {
  private readonly latestByTicker = new Map<string, PriceUpdate>()

  get size (): number {
    return this.latestByTicker.size
  }

  /** Keeps `update` as the ticker's pending value; true when it replaced an unsent one. */
  put (update: PriceUpdate): boolean {
    const replaced = this.latestByTicker.has(update.ticker)
    this.latestByTicker.set(update.ticker, update)
    return replaced
  }

  /** Drops the pending value of `ticker` when `sent` already covers it (same or newer ts). */
  discardCoveredBy (sent: PriceUpdate): void {
    const pending = this.latestByTicker.get(sent.ticker)
    if (pending !== undefined && pending.ts <= sent.ts) this.latestByTicker.delete(sent.ticker)
  }

  /** The serialized pending prices, emptying the batch. */
  take (): string[] {
    const serialized: string[] = []
    for (const update of this.latestByTicker.values()) serialized.push(update.json)
    this.latestByTicker.clear()
    return serialized
  }
}
