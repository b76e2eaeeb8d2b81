import type { PriceUpdate } from '../price.js'

/**
 * The prices a stream has not sent yet: at most one per ticker, the latest (conflation).
 * Its size is bounded by the session's ticker count however slow the client is.
 *
 * One fixed slot per watched ticker instead of a Map: a long-lived Map reallocates its table
 * on every `clear()` and on growth, and V8 puts the new table straight into the old
 * generation because the Map lives there. At 10 000 streams flushing 4 times a second that was
 * megabytes of old-space garbage per second, and RSS swelled to several times the live heap
 * between full collections (see BENCHMARKS.md). The slots never reallocate.
 */
export class PendingBatch {
  private readonly slots: Array<PriceUpdate | undefined>
  private count = 0

  /** `tickers`: the stream's tickers; prices for any other ticker are ignored. */
  constructor (private readonly tickers: readonly string[]) {
    this.slots = tickers.map(() => undefined)
  }

  get size (): number {
    return this.count
  }

  /** Keeps `update` as the ticker's pending value; true when it replaced an unsent one. */
  put (update: PriceUpdate): boolean {
    const slot = this.tickers.indexOf(update.ticker)
    if (slot === -1) return false
    const replaced = this.slots[slot] !== undefined
    if (!replaced) this.count++
    this.slots[slot] = update
    return replaced
  }

  /**
   * Drops the pending value of `sent`'s ticker when it is the price `sent` itself (or one
   * serialized the same): the snapshot delivered it. Any other pending price stays, whatever
   * its `ts`, because "latest" is the bus's order, not `ts` (README, "Snapshots"). A snapshot
   * read from this instance's own memory hands back the very object the stream was offered,
   * so this drops exactly what it covers. One read from the shared cache cannot be ordered
   * against a price that came off the bus meanwhile: sending that price after it can at worst
   * show an older value until the next price, while dropping it could hide the newest one.
   */
  discardSent (sent: PriceUpdate): void {
    const slot = this.tickers.indexOf(sent.ticker)
    const pending = this.slots[slot]
    if (pending === undefined || (pending !== sent && pending.json !== sent.json)) return
    this.slots[slot] = undefined
    this.count--
  }

  /** The serialized pending prices, in the stream's ticker order, emptying the batch. */
  take (): string[] {
    const serialized: string[] = []
    for (let slot = 0; slot < this.slots.length && serialized.length < this.count; slot++) {
      const update = this.slots[slot]
      if (update === undefined) continue
      serialized.push(update.json)
      this.slots[slot] = undefined
    }
    this.count = 0
    return serialized
  }
}
