import type { Clock } from '../clock.js'
import { RateLimitedWarning, type Logger } from '../logger.js'
import type { DeactivationReason } from '../sessions/session.js'
import { FlushScheduler } from './flush-scheduler.js'
import { SessionStream, type SseSink } from './session-stream.js'

export interface StreamSettings {
  flushIntervalMs: number
  heartbeatMs: number
  retryMs: number
  slowConsumerMs: number
}

export interface StreamCounters {
  eventsSent: number
  pricesConflated: number
  heartbeatsSent: number
}

export interface StreamHubOptions {
  settings: StreamSettings
  /** Spaces flushes and heartbeats and times congestion: a clock that never goes back (`monotonicClock`). */
  clock: Clock
  logger: Logger
  /** In [0, 1); spreads the shutdown retry hints. Injected so tests can pin it. */
  random?: () => number
}

/**
 * Owns what all streams share: the flush wheel, the heartbeat pass, the counters, and the
 * list of responses that are still open at the socket level (for a graceful drain).
 */
export class StreamHub {
  readonly settings: StreamSettings
  readonly clock: Clock
  readonly logger: Logger
  readonly scheduler: FlushScheduler
  readonly counters: StreamCounters = { eventsSent: 0, pricesConflated: 0, heartbeatsSent: 0 }
  /** Slow consumers can come in droves (a network blip); one warning per 10 s tells the story. */
  readonly slowConsumerWarning: RateLimitedWarning
  private readonly random: () => number
  private flushObservers: Array<(priceCount: number) => void> = []
  private readonly streams = new Set<SessionStream>()
  private readonly responses = new Set<SseSink>()
  private responsesClosedWaiters: Array<() => void> = []
  private heartbeatTimer: NodeJS.Timeout | undefined
  /**
   * How often the heartbeat pass runs: a tenth of HEARTBEAT_MS, at most once a second. One
   * pass over all streams instead of one timer per stream costs a comparison per stream.
   */
  readonly heartbeatPassMs: number

  constructor (options: StreamHubOptions) {
    this.settings = options.settings
    this.clock = options.clock
    this.logger = options.logger
    this.random = options.random ?? Math.random
    this.scheduler = new FlushScheduler(this.settings.flushIntervalMs, this.clock)
    this.slowConsumerWarning = new RateLimitedWarning(this.logger, 10_000, this.clock)
    this.heartbeatPassMs = Math.max(1, Math.min(1000, Math.floor(this.settings.heartbeatMs / 10)))
  }

  /** Streams the engine is serving (the `tickstream_streams_open` gauge). */
  get openCount (): number {
    return this.streams.size
  }

  /** Responses not yet closed at the socket level, including ended ones still flushing. */
  get responseCount (): number {
    return this.responses.size
  }

  open (sessionId: string, tickers: readonly string[], sink: SseSink, terminate: (reason: DeactivationReason) => void): SessionStream {
    const stream = new SessionStream(sessionId, tickers, sink, this, terminate)
    // A response whose client is already gone may have emitted its 'close' already: there
    // is nothing to wait for, and waiting for that event would never end.
    if (!stream.isGone) this.trackResponse(sink)
    this.streams.add(stream)
    this.startHeartbeats()
    return stream
  }

  /** Called once by a stream when it closes. */
  release (stream: SessionStream): void {
    this.scheduler.cancel(stream)
    this.streams.delete(stream)
    if (this.streams.size === 0) this.stopHeartbeats()
  }

  /** Observes the number of prices in each `prices` event (the flush-size histogram). */
  observeFlushes (observer: (priceCount: number) => void): void {
    this.flushObservers = [...this.flushObservers, observer]
  }

  recordFlush (priceCount: number): void {
    for (const observer of this.flushObservers) {
      try {
        observer(priceCount)
      } catch (err) {
        /* c8 ignore next 2 -- observers are metrics; a bug there must not break a flush */
        this.logger.error({ err }, 'flush observer failed')
      }
    }
  }

  /** A retry hint spread over [RETRY_MS, RETRY_MS + max(RETRY_MS, 5 s)) so clients do not return at once. */
  shutdownRetryMs (): number {
    const spread = Math.max(this.settings.retryMs, 5000)
    return this.settings.retryMs + Math.floor(this.random() * spread)
  }

  /**
   * An ended response whose bytes are still queued behind a client that does not read gets
   * SLOW_CONSUMER_MS to take them, then is destroyed, so it cannot hold memory forever.
   */
  lingerUntilFlushed (sink: SseSink): void {
    if (sink.writableLength === 0 || sink.destroyed) return
    const timer = setTimeout(() => sink.destroy(), this.settings.slowConsumerMs)
    timer.unref()
    sink.on('close', () => clearTimeout(timer))
  }

  /**
   * A response without a socket (queued behind another on a pipelined connection) may never
   * emit 'close' (see SessionStream.close): once its stream has ended, stop counting it.
   */
  forgetIfDetached (sink: SseSink): void {
    if (sink.socket !== null) return
    this.onResponseClosed(sink)
  }

  /** Resolves once every response handed to `open` has closed. */
  async whenResponsesClosed (): Promise<void> {
    if (this.responses.size === 0) return
    await new Promise<void>((resolve) => this.responsesClosedWaiters.push(resolve))
  }

  /** Cuts off every response still open (the end of a shutdown grace period). */
  destroyResponses (): number {
    const remaining = [...this.responses]
    for (const sink of remaining) sink.destroy()
    return remaining.length
  }

  stop (): void {
    this.scheduler.stop()
    this.stopHeartbeats()
  }

  private trackResponse (sink: SseSink): void {
    this.responses.add(sink)
    sink.on('close', () => this.onResponseClosed(sink))
  }

  private onResponseClosed (sink: SseSink): void {
    if (!this.responses.delete(sink) || this.responses.size > 0) return
    const waiters = this.responsesClosedWaiters
    this.responsesClosedWaiters = []
    for (const resolve of waiters) resolve()
  }

  /**
   * The heartbeat pass: a comment to every stream that has been silent for HEARTBEAT_MS less
   * one pass interval. Counting one pass early is what keeps every silence under
   * HEARTBEAT_MS: a stream that reaches the threshold just after a pass gets its comment at
   * the next one (the contract: a comment "whenever nothing was written for HEARTBEAT_MS").
   */
  sendDueHeartbeats (now: number): void {
    const silentSince = now - Math.max(0, this.settings.heartbeatMs - this.heartbeatPassMs)
    for (const stream of this.streams) stream.heartbeatIfSilentSince(silentSince)
  }

  private startHeartbeats (): void {
    if (this.heartbeatTimer !== undefined) return
    this.heartbeatTimer = setInterval(() => this.sendDueHeartbeats(this.clock()), this.heartbeatPassMs)
    this.heartbeatTimer.unref()
  }

  private stopHeartbeats (): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }
}
