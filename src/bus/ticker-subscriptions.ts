import type { PriceUpdate } from '../price.js'

export type PriceListener = (update: PriceUpdate) => void

/** What a transport does when a ticker gains its first or loses its last listener. */
export interface SubscriptionTarget {
  subscribe(ticker: string): void
  unsubscribe(ticker: string): void
}

export interface SubscriptionCounters {
  subscribeTotal: number
  unsubscribeTotal: number
}

/**
 * One listener watching a fixed list of distinct tickers: what `add` returns and `remove`
 * ends. A session holds one for its whole life.
 */
export interface Watch {
  readonly tickers: readonly string[]
  readonly listener: PriceListener
  /** True from `add` until `remove`; owned by TickerSubscriptions. */
  readonly active: boolean
}

interface WatchRecord extends Watch {
  active: boolean
}

/** A ticker's watches, ended ones included until the next compaction, and how many are active. */
interface TickerWatches {
  watches: WatchRecord[]
  activeCount: number
}

/** Ended watches a ticker's list may carry beyond its active ones before it is compacted. */
const COMPACTION_SLACK = 8

/**
 * Ref-counted bus subscriptions: one per ticker, shared by every watch of it. The first watch
 * of a ticker subscribes, the end of its last active one releases. Both run in one
 * synchronous step, so the count can never go negative and a watched ticker is always
 * subscribed, whatever the transport is doing asynchronously.
 *
 * Why lists with lazy removal rather than a Set of listeners per ticker: a registration burst
 * evicts a session for every one it registers, so each registration made three Set inserts
 * and three Set deletes (hash lookups in tables of thousands of entries, about 2 µs under load,
 * BENCHMARKS.md). Here `add` appends, `remove` only clears a flag and counts down, and a
 * ticker's list drops its ended watches once they outnumber the active ones, so a list never
 * holds more than twice its active watches (plus a few). Delivery skips ended watches.
 */
export class TickerSubscriptions {
  readonly counters: SubscriptionCounters = { subscribeTotal: 0, unsubscribeTotal: 0 }
  private readonly watchesByTicker = new Map<string, TickerWatches>()

  constructor (private readonly target: SubscriptionTarget) {}

  /** Tickers currently subscribed (the `tickstream_bus_subscriptions` gauge). */
  get size (): number {
    return this.watchesByTicker.size
  }

  tickers (): IterableIterator<string> {
    return this.watchesByTicker.keys()
  }

  isSubscribed (ticker: string): boolean {
    return this.watchesByTicker.has(ticker)
  }

  /** Active watches of `ticker`. */
  listenerCount (ticker: string): number {
    return this.watchesByTicker.get(ticker)?.activeCount ?? 0
  }

  /** Starts `listener` watching `tickers`, which must be distinct (a session's are). */
  add (tickers: readonly string[], listener: PriceListener): Watch {
    const watch: WatchRecord = { tickers, listener, active: true }
    for (const ticker of tickers) {
      let entry = this.watchesByTicker.get(ticker)
      if (entry === undefined) {
        entry = { watches: [], activeCount: 0 }
        this.watchesByTicker.set(ticker, entry)
        this.counters.subscribeTotal++
        this.target.subscribe(ticker)
      }
      entry.activeCount++
      entry.watches.push(watch)
      if (entry.watches.length > 2 * entry.activeCount + COMPACTION_SLACK) {
        // A new array, not an in-place filter: a delivery iterating the old one is unaffected.
        entry.watches = entry.watches.filter((each) => each.active)
      }
    }
    return watch
  }

  /** Ends a watch; a second call for the same watch does nothing. */
  remove (watch: Watch): void {
    const record = watch as WatchRecord
    if (!record.active) return
    record.active = false
    for (const ticker of record.tickers) {
      const entry = this.watchesByTicker.get(ticker)
      /* c8 ignore next -- an active watch's tickers all have an entry; this guards the types */
      if (entry === undefined) continue
      entry.activeCount--
      if (entry.activeCount > 0) continue
      this.watchesByTicker.delete(ticker)
      this.counters.unsubscribeTotal++
      this.target.unsubscribe(ticker)
    }
  }

  /**
   * Calls each active watch of `ticker` with `update`. A watch ended by an earlier listener
   * of the same call is skipped; one added during it is not called. `onError` gets what a
   * listener throws, and the rest are still called.
   */
  deliver (ticker: string, update: PriceUpdate, onError: (err: unknown, update: PriceUpdate) => void): void {
    const watches = this.watchesByTicker.get(ticker)?.watches
    if (watches === undefined) return
    for (let index = 0, count = watches.length; index < count; index++) {
      const watch = watches[index]
      if (watch === undefined || !watch.active) continue
      try {
        watch.listener(update)
      } catch (err) {
        onError(err, update)
      }
    }
  }

  /** The length of `ticker`'s list, ended watches included (tests check its bound). */
  storedWatchCount (ticker: string): number {
    return this.watchesByTicker.get(ticker)?.watches.length ?? 0
  }
}
