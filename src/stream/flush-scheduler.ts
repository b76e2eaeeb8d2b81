import type { Clock } from '../clock.js'

export interface Flushable {
  /** The wheel tick this item is scheduled for; owned by the scheduler. */
  flushTick: number | undefined
  flush(): void
}

/**
 * Decides when each stream writes its pending batch.
 *
 * Why a timing wheel: one timer per stream costs 10k timers at 10k streams, and one global
 * timer that flushes every stream at once turns each window into one event-loop-blocking
 * burst. Instead a single timer ticks every `FLUSH_INTERVAL_MS / 10` and each tick flushes
 * only the streams that are due in it. A stream asks to be flushed when it gets a price, at
 * `max(now, lastFlush + FLUSH_INTERVAL_MS)`, so
 *   - streams spread over the ticks by themselves (they become dirty at different times),
 *   - a stream never flushes twice within one window (its due time is never earlier),
 *   - idle streams cost nothing, and with no dirty stream the timer is stopped.
 */
export class FlushScheduler {
  readonly tickMs: number
  private readonly buckets: Array<Set<Flushable>>
  private lastProcessedTick: number
  private scheduledCount = 0
  private timer: NodeJS.Timeout | undefined

  constructor (flushIntervalMs: number, private readonly clock: Clock) {
    this.tickMs = Math.max(1, Math.ceil(flushIntervalMs / 10))
    // Due times are at most one interval ahead, so this many buckets never wrap onto a live tick.
    const bucketCount = Math.ceil(flushIntervalMs / this.tickMs) + 2
    this.buckets = Array.from({ length: bucketCount }, () => new Set<Flushable>())
    this.lastProcessedTick = Math.floor(clock() / this.tickMs)
  }

  get pending (): number {
    return this.scheduledCount
  }

  /** Flush `item` at the first tick at or after `dueAt` (epoch ms). No-op if already scheduled. */
  schedule (item: Flushable, dueAt: number): void {
    if (item.flushTick !== undefined) return
    const tick = Math.max(Math.ceil(dueAt / this.tickMs), this.lastProcessedTick + 1)
    item.flushTick = tick
    this.bucketOf(tick).add(item)
    this.scheduledCount++
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.runDueTicks(), this.tickMs)
      // Flushing alone must not keep a process alive; the HTTP server does that.
      this.timer.unref()
    }
  }

  cancel (item: Flushable): void {
    if (item.flushTick === undefined) return
    if (this.bucketOf(item.flushTick).delete(item)) this.scheduledCount--
    item.flushTick = undefined
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    for (const bucket of this.buckets) {
      for (const item of bucket) item.flushTick = undefined
      bucket.clear()
    }
    this.scheduledCount = 0
  }

  /** Runs every tick that is due, catching up when the event loop was late. */
  runDueTicks (): void {
    const nowTick = Math.floor(this.clock() / this.tickMs)
    // After a long stall, visiting each bucket once covers every skipped tick.
    const firstTick = Math.max(this.lastProcessedTick + 1, nowTick - this.buckets.length + 1)
    for (let tick = firstTick; tick <= nowTick; tick++) this.runTick(tick, nowTick)
    this.lastProcessedTick = nowTick
    if (this.scheduledCount === 0 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  private runTick (tick: number, nowTick: number): void {
    const bucket = this.bucketOf(tick)
    if (bucket.size === 0) return
    const due: Flushable[] = []
    for (const item of bucket) {
      // A bucket is shared by ticks one wheel-turn apart: leave items that are not due yet.
      if (item.flushTick !== undefined && item.flushTick <= nowTick) due.push(item)
    }
    for (const item of due) {
      bucket.delete(item)
      item.flushTick = undefined
      this.scheduledCount--
    }
    for (const item of due) item.flush()
  }

  private bucketOf (tick: number): Set<Flushable> {
    const bucket = this.buckets[tick % this.buckets.length]
    /* c8 ignore next 2 -- the modulo keeps the index in range; this satisfies the type checker */
    if (bucket === undefined) throw new Error(`no bucket for tick ${tick}`)
    return bucket
  }
}
