import type { PriceUpdate } from '../price.js'
import type { BusInbox, BusTransport } from './price-bus.js'

/**
 * Embedded mode: a publish is delivered synchronously to this process's subscribers.
 * There is no shared cache beyond the bus's own memory of what it saw.
 */
export class InProcessTransport implements BusTransport {
  readonly isReady = true
  private readonly subscribed = new Set<string>()

  constructor (private readonly inbox: BusInbox) {}

  subscribe (ticker: string): void {
    this.subscribed.add(ticker)
    // In effect at once: the next publish reaches it.
    this.inbox.subscriptionConfirmed(ticker)
  }

  unsubscribe (ticker: string): void {
    this.subscribed.delete(ticker)
  }

  async publish (updates: readonly PriceUpdate[]): Promise<void> {
    for (const update of updates) {
      if (this.subscribed.has(update.ticker)) this.inbox.deliver(update)
    }
  }

  async latest (): Promise<PriceUpdate[]> {
    return []
  }

  async close (): Promise<void> {
    this.subscribed.clear()
  }
}
