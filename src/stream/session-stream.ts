import type { PriceUpdate } from '../price.js'
import type { DeactivationReason } from '../sessions/session.js'
import type { Flushable } from './flush-scheduler.js'
import { PendingBatch } from './pending-batch.js'
import { pricesPayload, SSE_HEARTBEAT, sseEvent, sseRetry, type StreamEventName } from './sse-format.js'
import type { StreamHub } from './stream-hub.js'

/**
 * What a stream needs from an HTTP response. Node's `ServerResponse` is one; tests may use
 * any `Writable`.
 */
export interface SseSink {
  write(chunk: string): boolean
  end(): void
  destroy(): void
  readonly destroyed: boolean
  readonly writableLength: number
  /** An HTTP response's socket; `null` while the response waits behind a pipelined one. */
  readonly socket?: { readonly destroyed: boolean } | null
  /** An HTTP response's request, whose socket is the connection even while the response waits. */
  readonly req?: { readonly socket: { once(event: 'close', listener: () => void): unknown } | null }
  once(event: 'drain', listener: () => void): unknown
  on(event: 'close', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
}

type Phase = 'opening' | 'live' | 'closed'

/**
 * One open SSE response: its pending batch, its event ids, its backpressure state.
 *
 * It never ends a session by itself: when its client goes away, a write fails or it stays
 * congested too long, it reports that through `terminate`, which is the registry's one
 * deactivate; the registry then calls `close`.
 */
export class SessionStream implements Flushable {
  flushTick: number | undefined = undefined
  flushDueAt = 0
  wheelPrevious: Flushable | undefined = undefined
  wheelNext: Flushable | undefined = undefined
  private readonly batch: PendingBatch
  private phase: Phase = 'opening'
  private lastEventId = 0
  private lastFlushAt = Number.NEGATIVE_INFINITY
  private lastWriteAt: number
  private congestedSince: number | undefined = undefined
  private slowConsumerTimer: NodeJS.Timeout | undefined = undefined

  constructor (
    readonly sessionId: string,
    tickers: readonly string[],
    private readonly sink: SseSink,
    private readonly hub: StreamHub,
    private readonly terminate: (reason: DeactivationReason) => void
  ) {
    this.batch = new PendingBatch(tickers)
    this.lastWriteAt = hub.clock()
    // Every way the response can go away ends the session; deactivate is idempotent, so
    // the 'close' that follows our own end() is harmless.
    sink.on('close', () => this.terminate('client_closed'))
    // A response pipelined behind another one has no socket yet, and Node tells it nothing if
    // the connection dies first: the connection itself is watched too.
    sink.req?.socket?.once('close', () => this.terminate('client_closed'))
    sink.on('error', (err) => {
      hub.logger.debug({ sessionId: shortId(sessionId), err }, 'stream write failed')
      this.terminate('client_closed')
    })
  }

  /**
   * Writes the stream's first line, `retry:`. Not in the constructor: a write can end the
   * session at once (a sink that throws), and `terminate` can only close a stream its owner
   * has already recorded.
   */
  start (): void {
    if (!this.isGone) this.write(sseRetry(this.hub.settings.retryMs))
  }

  get isCongested (): boolean {
    return this.congestedSince !== undefined
  }

  get pendingSize (): number {
    return this.batch.size
  }

  get bufferedBytes (): number {
    return this.sink.writableLength
  }

  /**
   * True when the client went away before or while the stream was set up. The socket is
   * checked too because a reset can destroy it first. A `null` socket is not "gone": a
   * pipelined response gets its socket when the one before it is done.
   */
  get isGone (): boolean {
    return this.sink.destroyed || this.sink.socket?.destroyed === true
  }

  /** A price for one of the session's tickers: keep it as the ticker's latest, flush soon. */
  offer (update: PriceUpdate): void {
    if (this.phase === 'closed') return
    if (this.batch.put(update)) this.hub.counters.pricesConflated++
    this.requestFlush()
  }

  /** The first event. Prices that arrived while it was being fetched and that it sent are dropped. */
  sendSnapshot (snapshot: readonly PriceUpdate[]): void {
    if (this.phase !== 'opening') return
    for (const update of snapshot) this.batch.discardSent(update)
    this.writeEvent('snapshot', pricesPayload(snapshot.map((update) => update.json)))
    this.phase = 'live'
    this.requestFlush()
  }

  /** Called by the flush scheduler when this stream is due; `firedAt` dates the flush. */
  flush (firedAt: number): void {
    if (this.phase !== 'live' || this.isCongested || this.batch.size === 0) return
    const prices = this.batch.take()
    this.lastFlushAt = firedAt
    this.hub.recordFlush(prices.length)
    this.writeEvent('prices', pricesPayload(prices))
  }

  /** Called by the hub's heartbeat pass: a comment if nothing was written since `silentSince`. */
  heartbeatIfSilentSince (silentSince: number): void {
    if (this.phase === 'closed' || this.isCongested) return
    if (this.lastWriteAt <= silentSince) {
      this.hub.counters.heartbeatsSent++
      this.write(SSE_HEARTBEAT)
    }
  }

  /**
   * Ends the response for `reason`. Only the registry's deactivate calls this, once per
   * session; the phase check makes a second call harmless anyway.
   */
  close (reason: DeactivationReason): void {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    this.hub.release(this)
    this.clearSlowConsumerTimer()
    this.endResponse(reason)
    // A response still queued behind another on its connection has no socket yet. Its 'close'
    // comes only once the one ahead finishes and hands it the socket: never if the connection
    // dies first, and not for as long as the one ahead is a stream. Its bytes still go out if
    // it gets the socket; it is just no longer counted (or waited for) as open.
    this.hub.forgetIfDetached(this.sink)
  }

  private endResponse (reason: DeactivationReason): void {
    if (reason === 'client_closed' || this.sink.destroyed) {
      this.sink.destroy()
      return
    }
    if (reason === 'slow_consumer') {
      // Its end event goes out only if the socket can take it now; it is cut off either way.
      if (!this.isCongested) this.writeEvent('end', endPayload(reason))
      this.sink.destroy()
      return
    }
    const retryHint = reason === 'shutdown' ? sseRetry(this.hub.shutdownRetryMs()) : ''
    this.writeEvent('end', endPayload(reason), retryHint)
    this.sink.end()
    // During a shutdown the drain's deadline cuts off what is left; until then it may flush.
    if (reason !== 'shutdown') this.hub.lingerUntilFlushed(this.sink)
  }

  private requestFlush (): void {
    if (this.phase !== 'live' || this.isCongested || this.batch.size === 0) return
    this.hub.scheduler.schedule(this, this.lastFlushAt + this.hub.settings.flushIntervalMs)
  }

  private writeEvent (event: StreamEventName, data: string, prefix = ''): void {
    if (this.sink.destroyed) return
    this.lastEventId++
    this.hub.counters.eventsSent++
    this.write(prefix + sseEvent(this.lastEventId, event, data))
  }

  private write (chunk: string): void {
    if (this.sink.destroyed) return
    this.lastWriteAt = this.hub.clock()
    let accepted: boolean
    try {
      accepted = this.sink.write(chunk)
    } catch (err) {
      // A socket reports a failed write through 'error'; other sinks may throw.
      this.hub.logger.debug({ sessionId: shortId(this.sessionId), err }, 'stream write threw')
      this.terminate('client_closed')
      return
    }
    if (!accepted && this.phase !== 'closed') this.becomeCongested()
  }

  /**
   * The socket's buffer is full: stop writing, keep conflating (memory stays bounded by the
   * ticker count), resume on 'drain', give up after SLOW_CONSUMER_MS.
   */
  private becomeCongested (): void {
    if (this.isCongested) return
    this.congestedSince = this.hub.clock()
    this.hub.scheduler.cancel(this)
    this.sink.once('drain', () => this.onDrain())
    this.slowConsumerTimer = setTimeout(() => {
      this.hub.slowConsumerWarning.warn({ sessionId: shortId(this.sessionId), congestedMs: this.hub.settings.slowConsumerMs }, 'slow consumer cut off')
      this.terminate('slow_consumer')
    }, this.hub.settings.slowConsumerMs)
    this.slowConsumerTimer.unref()
  }

  private onDrain (): void {
    if (this.phase === 'closed') return
    this.congestedSince = undefined
    this.clearSlowConsumerTimer()
    this.requestFlush()
  }

  private clearSlowConsumerTimer (): void {
    if (this.slowConsumerTimer !== undefined) clearTimeout(this.slowConsumerTimer)
    this.slowConsumerTimer = undefined
  }
}

function endPayload (reason: DeactivationReason): string {
  return JSON.stringify({ reason })
}

/** Session ids are capabilities: logs carry only a prefix. */
export function shortId (sessionId: string): string {
  return sessionId.slice(0, 8)
}
