import type { Clock } from '../clock.js'

export interface Flushable {
  /** The wheel tick this item is scheduled for; owned by the scheduler. */
  flushTick: number | undefined
  /** The time (epoch ms) it is due at; owned by the scheduler. */
  flushDueAt: number
  /** Its neighbours in that tick's bucket; owned by the scheduler. */
  wheelPrevious: Flushable | undefined
  wheelNext: Flushable | undefined
  /**
   * `firedAt`: the time the timer run that flushes it started, the same for every item of the
   * run. Counting the next due time from it, not from the clock after earlier items' writes,
   * lets an item flushed every interval land on the same timer run phase each time.
   */
  flush(firedAt: number): void
}

/**
 * Decides when each stream writes its pending batch.
 *
 * Why a timing wheel: one timer per stream costs 10k timers at 10k streams, and one global
 * timer that flushes every stream at once turns each window into one event-loop-blocking
 * burst. Instead a single timer ticks every `FLUSH_INTERVAL_MS / 10` and each run flushes
 * only the streams whose due time has come. A stream asks to be flushed when it gets a price,
 * at `max(now, lastFlush + FLUSH_INTERVAL_MS)`, so
 *   - streams spread over the ticks by themselves (they become dirty at different times),
 *   - a stream never flushes twice within one window (its due time is never earlier),
 *   - idle streams cost nothing, and with no dirty stream the timer is stopped.
 *
 * Each bucket is an intrusive doubly linked list through the items themselves: schedule and
 * cancel are O(1) and allocate nothing. (Buckets were Sets; a Set that fills and drains every
 * wheel turn reallocates its table each time, in the old generation, which showed as
 * megabytes of garbage per second at 10 000 streams.)
 */
export class FlushScheduler {
  readonly tickMs: number
  /** The first item of each bucket's list. */
  private readonly buckets: Array<Flushable | undefined>
  private lastProcessedTick: number
  private scheduledCount = 0
  private timer: NodeJS.Timeout | undefined

  constructor (flushIntervalMs: number, private readonly clock: Clock) {
    this.tickMs = Math.max(1, Math.ceil(flushIntervalMs / 10))
    // Due times are at most one interval ahead, so this many buckets never wrap onto a live tick.
    const bucketCount = Math.ceil(flushIntervalMs / this.tickMs) + 2
    this.buckets = Array.from({ length: bucketCount }, () => undefined)
    this.lastProcessedTick = Math.floor(clock() / this.tickMs)
  }

  get pending (): number {
    return this.scheduledCount
  }

  /**
   * Flush `item` at the first timer run at or after `dueAt` (epoch ms), never before it.
   * No-op if already scheduled. It goes in the bucket of the tick `dueAt` falls in; a run
   * earlier within that tick moves it on to the next one.
   */
  schedule (item: Flushable, dueAt: number): void {
    if (item.flushTick !== undefined) return
    const tick = Math.max(Math.floor(dueAt / this.tickMs), this.lastProcessedTick + 1)
    item.flushDueAt = dueAt
    item.flushTick = tick
    this.link(item, this.bucketIndex(tick))
    this.scheduledCount++
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.runDueTicks(), this.tickMs)
      // Flushing alone must not keep a process alive; the HTTP server does that.
      this.timer.unref()
    }
  }

  cancel (item: Flushable): void {
    if (item.flushTick === undefined) return
    this.unlink(item, this.bucketIndex(item.flushTick))
    this.scheduledCount--
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    for (let index = 0; index < this.buckets.length; index++) {
      for (let head = this.buckets[index]; head !== undefined; head = this.buckets[index]) this.unlink(head, index)
    }
    this.scheduledCount = 0
  }

  /** Runs every tick that is due, catching up when the event loop was late. */
  runDueTicks (): void {
    const now = this.clock()
    const nowTick = Math.floor(now / this.tickMs)
    // After a long stall, visiting each bucket once covers every skipped tick.
    const firstTick = Math.max(this.lastProcessedTick + 1, nowTick - this.buckets.length + 1)
    for (let tick = firstTick; tick <= nowTick; tick++) this.runTick(tick, nowTick, now)
    this.lastProcessedTick = nowTick
    if (this.scheduledCount === 0 && this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  private runTick (tick: number, nowTick: number, now: number): void {
    const index = this.bucketIndex(tick)
    const due: Flushable[] = []
    let item = this.buckets[index]
    while (item !== undefined) {
      const next = item.wheelNext
      // A bucket is shared by ticks one wheel-turn apart: leave items of a later turn alone.
      if (item.flushTick !== undefined && item.flushTick <= nowTick) {
        this.unlink(item, index)
        if (item.flushDueAt <= now) {
          this.scheduledCount--
          due.push(item)
        } else {
          // Due later within the current tick: the next run takes it.
          item.flushTick = nowTick + 1
          this.link(item, this.bucketIndex(nowTick + 1))
        }
      }
      item = next
    }
    // Flushed only once all are unlinked: a flush may schedule or cancel anything.
    for (const dueItem of due) dueItem.flush(now)
  }

  private link (item: Flushable, index: number): void {
    const head = this.buckets[index]
    item.wheelPrevious = undefined
    item.wheelNext = head
    if (head !== undefined) head.wheelPrevious = item
    this.buckets[index] = item
  }

  private unlink (item: Flushable, index: number): void {
    if (item.wheelPrevious === undefined) this.buckets[index] = item.wheelNext
    else item.wheelPrevious.wheelNext = item.wheelNext
    if (item.wheelNext !== undefined) item.wheelNext.wheelPrevious = item.wheelPrevious
    item.wheelPrevious = undefined
    item.wheelNext = undefined
    item.flushTick = undefined
  }

  private bucketIndex (tick: number): number {
    return tick % this.buckets.length
  }
}
