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
 * Ref-counted bus subscriptions: one per ticker, shared by every listener watching it.
 * The first `add` for a ticker subscribes, the last `remove` releases. Both run in one
 * synchronous step, so the count can never go negative and a watched ticker is always
 * subscribed, whatever the transport is doing asynchronously.
 */
export class TickerSubscriptions {
  readonly counters: SubscriptionCounters = { subscribeTotal: 0, unsubscribeTotal: 0 }
  private readonly listenersByTicker = new Map<string, Set<PriceListener>>()

  constructor (private readonly target: SubscriptionTarget) {}

  /** Tickers currently subscribed (the `tickstream_bus_subscriptions` gauge). */
  get size (): number {
    return this.listenersByTicker.size
  }

  tickers (): IterableIterator<string> {
    return this.listenersByTicker.keys()
  }

  isSubscribed (ticker: string): boolean {
    return this.listenersByTicker.has(ticker)
  }

  listenerCount (ticker: string): number {
    return this.listenersByTicker.get(ticker)?.size ?? 0
  }

  add (ticker: string, listener: PriceListener): void {
    let listeners = this.listenersByTicker.get(ticker)
    if (listeners === undefined) {
      listeners = new Set()
      this.listenersByTicker.set(ticker, listeners)
      this.counters.subscribeTotal++
      this.target.subscribe(ticker)
    }
    listeners.add(listener)
  }

  remove (ticker: string, listener: PriceListener): void {
    const listeners = this.listenersByTicker.get(ticker)
    if (listeners === undefined || !listeners.delete(listener)) return
    if (listeners.size > 0) return
    this.listenersByTicker.delete(ticker)
    this.counters.unsubscribeTotal++
    this.target.unsubscribe(ticker)
  }

  listenersOf (ticker: string): ReadonlySet<PriceListener> | undefined {
    return this.listenersByTicker.get(ticker)
  }
}
