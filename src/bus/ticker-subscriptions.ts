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

/** Set by `TickerSubscriptions.remove` only: the key is not exported, so no one else can. */
const ended = Symbol('ended')

/**
 * One listener watching a fixed list of distinct tickers: what `add` returns and `remove`
 * ends. A session holds one for its whole life. A class with a module-private field, so that
 * only `add` makes one: an object that merely looks like a watch cannot end someone else's.
 */
export class Watch {
  [ended] = false

  constructor (
    readonly tickers: readonly string[],
    readonly listener: PriceListener
  ) {}

  /** True from `add` until `remove`. */
  get active (): boolean {
    return !this[ended]
  }
}

/** A ticker's watches, ended ones included until the next compaction, and how many are active. */
interface TickerWatches {
  watches: Watch[]
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
 * BENCHMARKS.md). Here `add` appends and `remove` marks the watch ended and counts down.
 * Whenever a list holds more than twice its active watches plus a few, after an add or a
 * remove, it is rebuilt without the ended ones: an ended session is never kept alive by a
 * list for long, and the rebuilds cost O(1) per add or remove on average. Delivery skips
 * ended watches.
 */
export class TickerSubscriptions {
  readonly counters: SubscriptionCounters = { subscribeTotal: 0, unsubscribeTotal: 0 }
  private readonly watchesByTicker = new Map<string, TickerWatches>()

  constructor (private readonly target: SubscriptionTarget) {}

  /** Tickers currently subscribed (the `tickstream_bus_subscriptions` gauge). */
  get size (): number {
    return this.watchesByTicker.size
  }

  /** The subscribed tickers (tests check them against the target's calls). */
  tickers (): IterableIterator<string> {
    return this.watchesByTicker.keys()
  }

  /** Active watches of `ticker`. */
  listenerCount (ticker: string): number {
    return this.watchesByTicker.get(ticker)?.activeCount ?? 0
  }

  /** Starts `listener` watching `tickers`, which must be distinct (a session's are). */
  add (tickers: readonly string[], listener: PriceListener): Watch {
    const watch = new Watch(tickers, listener)
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
      compactIfSparse(entry)
    }
    return watch
  }

  /** Ends a watch; a second call for the same watch, or an object `add` did not make, does nothing. */
  remove (watch: Watch): void {
    if (watch[ended] !== false) return
    watch[ended] = true
    for (const ticker of watch.tickers) {
      const entry = this.watchesByTicker.get(ticker)
      /* c8 ignore next -- an active watch's tickers all have an entry; this guards the types */
      if (entry === undefined) continue
      entry.activeCount--
      if (entry.activeCount > 0) {
        compactIfSparse(entry)
        continue
      }
      this.watchesByTicker.delete(ticker)
      this.counters.unsubscribeTotal++
      this.target.unsubscribe(ticker)
    }
  }

  /**
   * Calls each active watch of `ticker` with `update`; false when nothing watches it. A watch
   * ended by an earlier listener of the same call is skipped; one added during it is not
   * called. `onError` gets what a listener throws, and the rest are still called.
   */
  deliver (ticker: string, update: PriceUpdate, onError: (err: unknown, update: PriceUpdate) => void): boolean {
    const entry = this.watchesByTicker.get(ticker)
    if (entry === undefined) return false
    // This array, as it is now: a compaction during the loop builds a new one.
    const watches = entry.watches
    for (let index = 0, count = watches.length; index < count; index++) {
      const watch = watches[index]
      if (watch === undefined || watch[ended]) continue
      try {
        watch.listener(update)
      } catch (err) {
        onError(err, update)
      }
    }
    return true
  }

  /** The length of `ticker`'s list, ended watches included (tests check its bound). */
  storedWatchCount (ticker: string): number {
    return this.watchesByTicker.get(ticker)?.watches.length ?? 0
  }
}

/**
 * Rebuilds a list without its ended watches once they outnumber the active ones (plus the
 * slack). A new array, not an in-place filter: a delivery iterating the old one is unaffected.
 */
function compactIfSparse (entry: TickerWatches): void {
  if (entry.watches.length > 2 * entry.activeCount + COMPACTION_SLACK) {
    entry.watches = entry.watches.filter((watch) => !watch[ended])
  }
}
