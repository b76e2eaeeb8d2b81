import t, { type Test } from 'tap'
import { systemClock } from '../../src/clock.js'
import { FlushScheduler, type Flushable } from '../../src/stream/flush-scheduler.js'
import { randomInt, seededRandom } from './seeded-random.js'

/*
 * Time is mocked: the wheel decides what to flush from the clock it is given, so these tests
 * hand it a fake clock (a mutable number) and call runDueTicks() themselves, instead of waiting
 * for its real interval. Each scheduler is stopped on teardown, which clears that interval.
 * The last test uses the real clock and timer.
 */

const START = 1_000_000

class FakeClock {
  now = START
  readonly read = (): number => this.now
}

/** A stream stand-in: records the fake time of each flush. */
class Item implements Flushable {
  flushTick: number | undefined = undefined
  flushDueAt = 0
  wheelPrevious: Flushable | undefined = undefined
  wheelNext: Flushable | undefined = undefined
  readonly flushedAt: number[] = []
  constructor (readonly name: string, private readonly clock: FakeClock, private readonly onFlush?: (item: Item) => void) {}

  flush (): void {
    this.flushedAt.push(this.clock.now)
    this.onFlush?.(this)
  }
}

function setup (t: Test, flushIntervalMs = 100): { clock: FakeClock, scheduler: FlushScheduler } {
  const clock = new FakeClock()
  const scheduler = new FlushScheduler(flushIntervalMs, clock.read)
  t.teardown(() => scheduler.stop())
  return { clock, scheduler }
}

/** Moves the fake clock to `to` one millisecond at a time, running the wheel at each step. */
function stepTo (clock: FakeClock, scheduler: FlushScheduler, to: number): void {
  while (clock.now < to) {
    clock.now++
    scheduler.runDueTicks()
  }
}

t.test('a tick is a tenth of the flush interval, rounded up, at least 1 ms', async (t) => {
  const cases: Array<[number, number]> = [[100, 10], [95, 10], [101, 11], [1000, 100], [15_000, 1500], [10, 1], [5, 1], [1, 1]]
  for (const [interval, tickMs] of cases) {
    const scheduler = new FlushScheduler(interval, () => START)
    t.equal(scheduler.tickMs, tickMs, `interval ${interval} ms ticks every ${tickMs} ms`)
    scheduler.stop()
  }
})

t.test('an item due on a tick boundary is flushed by the first run at its due time, not before', async (t) => {
  const { clock, scheduler } = setup(t)
  const item = new Item('a', clock)
  const dueAt = START + 50
  scheduler.schedule(item, dueAt)
  t.equal(scheduler.pending, 1)
  stepTo(clock, scheduler, dueAt - 1)
  t.strictSame(item.flushedAt, [], 'nothing before its due time')
  t.equal(scheduler.pending, 1)
  clock.now = dueAt
  scheduler.runDueTicks()
  t.strictSame(item.flushedAt, [dueAt], 'flushed by the run at its due time')
  t.equal(scheduler.pending, 0)
  t.equal(item.flushTick, undefined, 'no longer scheduled')
})

t.test('an item due between ticks is flushed at the first tick at or after its due time', async (t) => {
  const { clock, scheduler } = setup(t)
  for (const offset of [1, 9, 11, 55, 99, 100]) {
    const item = new Item(`+${offset}`, clock)
    const dueAt = clock.now + offset
    scheduler.schedule(item, dueAt)
    stepTo(clock, scheduler, dueAt + 2 * scheduler.tickMs)
    t.equal(item.flushedAt.length, 1, `due in ${offset} ms: flushed once`)
    const at = item.flushedAt[0] ?? Number.NaN
    t.ok(at >= dueAt, `due in ${offset} ms: not early (${at} >= ${dueAt})`)
    t.ok(at < dueAt + scheduler.tickMs, `due in ${offset} ms: within one tick (${at} < ${dueAt + scheduler.tickMs})`)
    t.equal(at % scheduler.tickMs, 0, 'flushes happen on tick boundaries')
  }
  t.equal(scheduler.pending, 0)
})

t.test('an item due in the past is flushed at the next tick', async (t) => {
  const { clock, scheduler } = setup(t)
  clock.now = START + 3 // mid-tick
  scheduler.runDueTicks()
  const item = new Item('late', clock)
  scheduler.schedule(item, START - 10_000)
  scheduler.runDueTicks()
  t.strictSame(item.flushedAt, [], 'not within the tick already processed')
  stepTo(clock, scheduler, START + scheduler.tickMs)
  t.strictSame(item.flushedAt, [START + scheduler.tickMs], 'flushed at the next tick boundary')
})

t.test('scheduling an item that is already scheduled is a no-op', async (t) => {
  const { clock, scheduler } = setup(t)
  const item = new Item('a', clock)
  scheduler.schedule(item, START + 80)
  scheduler.schedule(item, START + 10)
  scheduler.schedule(item, START + 80)
  t.equal(scheduler.pending, 1, 'counted once')
  stepTo(clock, scheduler, START + 79)
  t.strictSame(item.flushedAt, [], 'the earlier second due time was ignored')
  stepTo(clock, scheduler, START + 200)
  t.strictSame(item.flushedAt, [START + 80], 'flushed exactly once, at the first due time')
  t.equal(scheduler.pending, 0)
})

t.test('cancel prevents the flush and decrements pending', async (t) => {
  const { clock, scheduler } = setup(t)
  const kept = new Item('kept', clock)
  const cancelled = new Item('cancelled', clock)
  scheduler.schedule(kept, START + 30)
  scheduler.schedule(cancelled, START + 30)
  t.equal(scheduler.pending, 2)
  scheduler.cancel(cancelled)
  t.equal(scheduler.pending, 1)
  t.equal(cancelled.flushTick, undefined)
  scheduler.cancel(cancelled)
  t.equal(scheduler.pending, 1, 'cancelling twice changes nothing')
  scheduler.cancel(new Item('never scheduled', clock))
  t.equal(scheduler.pending, 1, 'cancelling an unscheduled item changes nothing')
  stepTo(clock, scheduler, START + 500)
  t.strictSame(kept.flushedAt, [START + 30])
  t.strictSame(cancelled.flushedAt, [], 'the cancelled item was never flushed')
  t.equal(scheduler.pending, 0)

  scheduler.schedule(cancelled, clock.now + 20)
  stepTo(clock, scheduler, clock.now + 20)
  t.strictSame(cancelled.flushedAt, [START + 520], 'a cancelled item can be scheduled again')
})

t.test('a stall longer than a full wheel turn flushes every due item exactly once', async (t) => {
  const { clock, scheduler } = setup(t)
  const items: Item[] = []
  for (let offset = 1; offset <= 100; offset += 3) {
    const item = new Item(`+${offset}`, clock)
    scheduler.schedule(item, START + offset)
    items.push(item)
  }
  t.equal(scheduler.pending, items.length)
  clock.now = START + 10 * 100 // ten flush intervals, far more than one turn of the wheel
  scheduler.runDueTicks()
  for (const item of items) t.strictSame(item.flushedAt, [clock.now], `${item.name} flushed once`)
  t.equal(scheduler.pending, 0)
  stepTo(clock, scheduler, clock.now + 1000)
  t.ok(items.every((item) => item.flushedAt.length === 1), 'and never again')
})

t.test('an item due more than one wheel turn ahead is not flushed early', async (t) => {
  const { clock, scheduler } = setup(t)
  const far = new Item('far', clock)
  const farDue = START + 1234 // the wheel holds about one interval (100 ms) of ticks
  scheduler.schedule(far, farDue)
  const near = new Item('near', clock)
  scheduler.schedule(near, START + 20)
  stepTo(clock, scheduler, START + 200)
  t.strictSame(near.flushedAt, [START + 20])
  t.strictSame(far.flushedAt, [], 'passing its bucket on earlier turns does not flush it')
  clock.now = START + 700 // a stall of several turns, still before it is due
  scheduler.runDueTicks()
  t.strictSame(far.flushedAt, [], 'nor does a stall that visits every bucket')
  t.equal(scheduler.pending, 1)
  stepTo(clock, scheduler, farDue + scheduler.tickMs)
  t.equal(far.flushedAt.length, 1)
  t.ok((far.flushedAt[0] ?? 0) >= farDue, 'flushed only once due')
  t.ok((far.flushedAt[0] ?? Infinity) < farDue + scheduler.tickMs, 'and within a tick of it')
  t.equal(scheduler.pending, 0)
})

t.test('an item rescheduled from its own flush, one interval later, flushes once per interval', async (t) => {
  const { clock, scheduler } = setup(t)
  let rounds = 0
  const item: Item = new Item('stream', clock, (self) => {
    rounds++
    if (rounds < 5) scheduler.schedule(self, clock.now + 100)
  })
  scheduler.schedule(item, START + 100)
  stepTo(clock, scheduler, START + 1000)
  t.strictSame(item.flushedAt, [START + 100, START + 200, START + 300, START + 400, START + 500])
  t.equal(scheduler.pending, 0)
})

t.test('random schedules, cancels and clock jumps: never early, never late, exactly once', async (t) => {
  // Randomness is mocked too: a seeded generator makes the interleaving reproducible.
  const random = seededRandom(0x5eed)
  const { clock, scheduler } = setup(t, 100)
  const due = new Map<Item, number>()
  const flushes = new Map<Item, number>()
  let earlyOrStray = 0
  const items = Array.from({ length: 60 }, (_, i) => new Item(`item${i}`, clock, (item) => {
    const dueAt = due.get(item)
    if (dueAt === undefined || clock.now < dueAt) earlyOrStray++
    due.delete(item)
    flushes.set(item, (flushes.get(item) ?? 0) + 1)
  }))
  let scheduled = 0
  let lateChecks = 0
  for (let step = 0; step < 5000; step++) {
    const action = random()
    const item = items[randomInt(random, items.length)]
    if (item === undefined) continue
    if (action < 0.45) {
      if (!due.has(item)) {
        // Mostly within one interval, as streams do, sometimes several turns ahead.
        const dueAt = clock.now + 1 + (random() < 0.8 ? randomInt(random, 100) : randomInt(random, 600))
        scheduler.schedule(item, dueAt)
        due.set(item, dueAt)
        scheduled++
      }
    } else if (action < 0.55) {
      scheduler.cancel(item)
      due.delete(item)
    } else {
      // Mostly small steps, sometimes a stall of several wheel turns.
      clock.now += random() < 0.95 ? randomInt(random, 15) : 150 + randomInt(random, 600)
      scheduler.runDueTicks()
      const late = [...due].filter(([, dueAt]) => clock.now >= Math.ceil(dueAt / scheduler.tickMs) * scheduler.tickMs)
      lateChecks += due.size
      if (late.length > 0) {
        t.fail(`step ${step}: ${late.map(([item, dueAt]) => `${item.name} (due ${dueAt})`).join(', ')} still waiting at ${clock.now}`)
        break
      }
    }
    if (scheduler.pending !== due.size) {
      t.fail(`pending ${scheduler.pending} but ${due.size} items are scheduled at step ${step}`)
      break
    }
  }
  t.equal(earlyOrStray, 0, 'no item was flushed before its due time, nor unscheduled')
  t.ok(scheduled > 500, `the run exercised many schedules (${scheduled})`)
  t.ok(lateChecks > 1000, `and checked lateness often (${lateChecks})`)
  clock.now += 10_000
  scheduler.runDueTicks()
  t.equal(due.size, 0, 'everything still scheduled is flushed in the end')
  t.equal(scheduler.pending, 0, 'pending is back to 0')
  const totalFlushes = [...flushes.values()].reduce((sum, n) => sum + n, 0)
  t.ok(totalFlushes <= scheduled, 'no item is flushed more often than it was scheduled')
})

t.test('stop forgets every scheduled item', async (t) => {
  const { clock, scheduler } = setup(t)
  const item = new Item('a', clock)
  scheduler.schedule(item, START + 10)
  scheduler.stop()
  t.equal(scheduler.pending, 0)
  t.equal(item.flushTick, undefined)
  stepTo(clock, scheduler, START + 500)
  t.strictSame(item.flushedAt, [], 'nothing is flushed after stop')
  scheduler.schedule(item, clock.now + 10)
  stepTo(clock, scheduler, clock.now + 10)
  t.strictSame(item.flushedAt, [START + 510], 'it can be used again')
})

t.test('with the real clock and timer, a scheduled item is flushed once due', async (t) => {
  const scheduler = new FlushScheduler(20, systemClock)
  t.teardown(() => scheduler.stop())
  const dueAt = Date.now() + 20
  let guard: NodeJS.Timeout | undefined
  const flushedAt = await new Promise<number>((resolve, reject) => {
    // The scheduler's own timer is unref'd; this one keeps the process alive, and fails the
    // test instead of hanging if no flush ever comes.
    guard = setTimeout(() => reject(new Error('no flush within 5 s')), 5000)
    scheduler.schedule({ flushTick: undefined, flushDueAt: 0, wheelPrevious: undefined, wheelNext: undefined, flush: () => resolve(Date.now()) }, dueAt)
  }).finally(() => clearTimeout(guard))
  t.ok(flushedAt >= dueAt, `flushed at ${flushedAt}, due at ${dueAt}`)
  t.equal(scheduler.pending, 0)
})

t.test('runs that start mid-tick: an item due every interval is flushed exactly one interval apart', async (t) => {
  const { clock, scheduler } = setup(t)
  let rounds = 0
  const item: Item = new Item('stream', clock, () => {
    // As a stream does: the next due time counts from the run that flushed it.
    if (++rounds < 4) scheduler.schedule(item, clock.now + 100)
  })
  scheduler.schedule(item, START + 9)
  // The timer runs 9 ms into every tick, as a timer started at an arbitrary moment does.
  for (let at = START + 9; at <= START + 600; at += scheduler.tickMs) {
    clock.now = at
    scheduler.runDueTicks()
  }
  t.equal(item.flushedAt.length, 4)
  const gaps = item.flushedAt.slice(1).map((at, i) => at - (item.flushedAt[i] ?? Number.NaN))
  t.strictSame(gaps, [100, 100, 100], 'not one tick later each time')
})

t.test('a timer restarted at another phase never flushes an item sooner than its due time', async (t) => {
  const { clock, scheduler } = setup(t)
  const item = new Item('stream', clock)
  // Flushed by a run 9 ms into its tick; the next one is due one interval after that run.
  clock.now = START + 9
  scheduler.runDueTicks()
  scheduler.schedule(item, START + 109)
  // The timer stopped and restarted: its runs now start on tick boundaries.
  for (let at = START + 10; at <= START + 100; at += scheduler.tickMs) {
    clock.now = at
    scheduler.runDueTicks()
  }
  t.strictSame(item.flushedAt, [], 'the run at +100 is within the due tick but before the due time')
  t.equal(scheduler.pending, 1)
  clock.now = START + 110
  scheduler.runDueTicks()
  t.strictSame(item.flushedAt, [START + 110], 'the next run takes it')
  t.equal(scheduler.pending, 0)
})
