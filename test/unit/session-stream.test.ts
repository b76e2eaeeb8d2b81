import { Writable } from 'node:stream'
import t from 'tap'
import { systemClock } from '../../src/clock.js'
import { silentLogger } from '../../src/logger.js'
import { priceUpdate } from '../../src/price.js'
import type { DeactivationReason } from '../../src/sessions/session.js'
import type { SessionStream } from '../../src/stream/session-stream.js'
import { StreamHub } from '../../src/stream/stream-hub.js'

/**
 * SessionStream against real Node Writables standing in for the socket: one that fails its
 * writes, one that holds them (a client that does not read), one that takes everything.
 */

// The stream's timers are unref'd (a server's socket keeps its process alive); here nothing
// else would, so a ref'd timer holds the process open while tests await those timers.
const keepAlive = setInterval(() => {}, 1000)
t.teardown(() => clearInterval(keepAlive))

function hub (overrides: Partial<ConstructorParameters<typeof StreamHub>[0]['settings']> = {}, clock = systemClock): StreamHub {
  const created = new StreamHub({
    settings: { flushIntervalMs: 10, heartbeatMs: 60_000, retryMs: 3000, slowConsumerMs: 10_000, ...overrides },
    clock,
    logger: silentLogger,
    random: () => 0.5
  })
  t.teardown(() => created.stop())
  return created
}

/** A sink that accepts writes but completes none until `release()`: a client that stopped reading. */
function stalledSink (highWaterMark = 16): Writable & { written: string[], release: () => void } {
  const held: Array<() => void> = []
  const written: string[] = []
  let stalled = true
  const sink = new Writable({
    highWaterMark,
    decodeStrings: false,
    write (chunk: string, _encoding, callback) {
      written.push(chunk)
      if (stalled) held.push(() => callback())
      else callback()
    }
  })
  return Object.assign(sink, {
    written,
    release: () => {
      stalled = false
      for (const done of held.splice(0)) done()
    }
  })
}

function collectingSink (): Writable & { text: () => string } {
  const chunks: string[] = []
  const sink = new Writable({
    decodeStrings: false,
    write (chunk: string, _encoding, callback) {
      chunks.push(chunk)
      callback()
    }
  })
  return Object.assign(sink, { text: () => chunks.join('') })
}

function open (h: StreamHub, sink: Writable): { stream: SessionStream, reasons: DeactivationReason[], terminated: Promise<DeactivationReason> } {
  const reasons: DeactivationReason[] = []
  let resolveTerminated: (reason: DeactivationReason) => void = () => {}
  const terminated = new Promise<DeactivationReason>((resolve) => { resolveTerminated = resolve })
  // Stand-in for the registry's deactivate: record, then close the stream, once.
  let stream: SessionStream | undefined
  const terminate = (reason: DeactivationReason): void => {
    reasons.push(reason)
    if (reasons.length === 1) {
      stream?.close(reason)
      resolveTerminated(reason)
    }
  }
  stream = h.open('session-under-test', ['AAPL', 'MSFT'], sink, terminate)
  stream.start()
  return { stream, reasons, terminated }
}

const price = (ticker: string, value: number): ReturnType<typeof priceUpdate> => priceUpdate({ ticker, price: value, ts: value })

t.test('a failing write ends the session as client_closed', async (t) => {
  const h = hub()
  const sink = new Writable({ write (_chunk, _encoding, callback) { callback(new Error('EPIPE: broken pipe')) } })
  const { reasons, terminated } = open(h, sink)
  t.equal(await terminated, 'client_closed')
  t.same(reasons.slice(0, 1), ['client_closed'])
  t.equal(h.openCount, 0, 'the hub let go of it')
})

t.test('a sink whose write throws ends the session as client_closed at its first write', async (t) => {
  const h = hub()
  const sink = new Writable({ write (_chunk, _encoding, callback) { callback() } })
  sink.write = () => { throw new Error('write after end') }
  const { reasons } = open(h, sink)
  t.same(reasons, ['client_closed'], 'ended once, by the retry line')
  t.equal(h.openCount, 0, 'the hub let go of it')
})

t.test('a full socket makes the stream congested; it conflates, then resumes on drain', async (t) => {
  const h = hub()
  const sink = stalledSink()
  const { stream } = open(h, sink)
  stream.sendSnapshot([])
  t.ok(stream.isCongested, 'retry + snapshot overflow a 16-byte buffer')
  for (let i = 1; i <= 100; i++) stream.offer(price(i % 2 === 0 ? 'AAPL' : 'MSFT', i))
  t.equal(stream.pendingSize, 2, 'one pending price per ticker however many arrive')
  t.equal(h.counters.pricesConflated, 98)
  const writesWhileCongested = sink.written.length
  h.scheduler.runDueTicks()
  t.equal(sink.written.length, writesWhileCongested, 'nothing is written while congested')

  const flushed = new Promise<void>((resolve) => {
    const check = (): void => { if (sink.written.some((chunk) => chunk.includes('event: prices'))) resolve(); else setImmediate(check) }
    check()
  })
  sink.release()
  await flushed
  t.notOk(stream.isCongested, 'drain clears congestion')
  const pricesChunk = sink.written.find((chunk) => chunk.includes('event: prices')) ?? ''
  t.match(pricesChunk, /"ticker":"AAPL","price":100/, 'the latest AAPL')
  t.match(pricesChunk, /"ticker":"MSFT","price":99/, 'the latest MSFT')
  stream.close('deleted')
})

t.test('congested longer than SLOW_CONSUMER_MS ends the session as slow_consumer, without an end event', async (t) => {
  const h = hub({ slowConsumerMs: 30 })
  const sink = stalledSink()
  const { stream, terminated } = open(h, sink)
  stream.sendSnapshot([])
  t.ok(stream.isCongested)
  t.equal(await terminated, 'slow_consumer')
  t.ok(sink.destroyed, 'the response is destroyed')
  t.notOk(sink.written.some((chunk) => chunk.includes('event: end')), 'its socket could not take an end event')
})

t.test('a slow_consumer end on a writable socket still sends the end event', async (t) => {
  const h = hub()
  const sink = collectingSink()
  const { stream } = open(h, sink)
  stream.sendSnapshot([])
  stream.close('slow_consumer')
  t.match(sink.text(), /event: end\ndata: {"reason":"slow_consumer"}/)
  t.ok(sink.destroyed)
})

t.test('close writes one end event, ends the response and ignores later calls', async (t) => {
  const h = hub()
  const sink = collectingSink()
  const { stream } = open(h, sink)
  stream.sendSnapshot([price('AAPL', 1)])
  stream.close('deleted')
  stream.close('expired')
  stream.offer(price('AAPL', 2))
  const finished = new Promise((resolve) => sink.on('finish', resolve))
  await finished
  t.equal(sink.text(), 'retry: 3000\n\nid: 1\nevent: snapshot\ndata: {"prices":[{"ticker":"AAPL","price":1,"ts":1}]}\n\nid: 2\nevent: end\ndata: {"reason":"deleted"}\n\n')
})

t.test('a shutdown end carries a retry hint spread above RETRY_MS', async (t) => {
  const h = hub({ retryMs: 1000 })
  const sink = collectingSink()
  const { stream } = open(h, sink)
  stream.sendSnapshot([])
  stream.close('shutdown')
  // random() is pinned to 0.5: 1000 + floor(0.5 * max(1000, 5000)).
  t.match(sink.text(), /retry: 3500\n\nid: 2\nevent: end\ndata: {"reason":"shutdown"}\n\n$/)
})

t.test('client_closed writes nothing more and destroys the response', async (t) => {
  const h = hub()
  const sink = collectingSink()
  const { stream } = open(h, sink)
  stream.sendSnapshot([])
  const before = sink.text()
  stream.close('client_closed')
  t.equal(sink.text(), before)
  t.ok(sink.destroyed)
})

t.test('an ended response whose client never reads is destroyed after SLOW_CONSUMER_MS', async (t) => {
  const h = hub({ slowConsumerMs: 30 })
  const sink = stalledSink(1024 * 1024)
  const { stream } = open(h, sink)
  stream.sendSnapshot([])
  const destroyed = new Promise((resolve) => sink.on('close', resolve))
  stream.close('evicted')
  t.ok(sink.writableLength > 0, 'its bytes are still queued')
  await destroyed
  t.ok(sink.destroyed)
  await h.whenResponsesClosed()
  t.equal(h.responseCount, 0)
})

t.test('prices that the snapshot already sent are not sent again', async (t) => {
  const h = hub()
  const sink = collectingSink()
  const { stream } = open(h, sink)
  const aapl = price('AAPL', 5)
  stream.offer(aapl)
  stream.offer(price('MSFT', 9))
  stream.sendSnapshot([aapl])
  t.equal(stream.pendingSize, 1, 'only MSFT is still pending')
  stream.close('deleted')
})

t.test('a price offered during the snapshot fetch that the snapshot did not send goes out after it, even with a smaller ts', async (t) => {
  const h = hub()
  const sink = collectingSink()
  const { stream } = open(h, sink)
  // Came off the bus after the shared cache was read: newer in the bus's order, older by ts.
  const later = priceUpdate({ ticker: 'AAPL', price: 6, ts: 4 })
  stream.offer(later)
  stream.sendSnapshot([price('AAPL', 5)])
  t.equal(stream.pendingSize, 1, 'still pending, to be flushed after the snapshot')
  stream.flush(h.clock())
  t.match(sink.text(), /event: snapshot\ndata: \{"prices":\[\{"ticker":"AAPL","price":5,"ts":5\}\]\}\n\nid: 2\nevent: prices\ndata: \{"prices":\[\{"ticker":"AAPL","price":6,"ts":4\}\]\}/)
  stream.close('deleted')
})

t.test('a heartbeat comes before a silence reaches HEARTBEAT_MS, never more than one pass early', async (t) => {
  // Time is mocked: the pass is called directly with chosen times instead of waiting for its timer.
  let now = 1_000_000
  const h = hub({ heartbeatMs: 1000 }, () => now)
  t.equal(h.heartbeatPassMs, 100, 'a tenth of HEARTBEAT_MS')
  t.equal(hub({ heartbeatMs: 15_000 }).heartbeatPassMs, 1000, 'at most once a second')
  t.equal(hub({ heartbeatMs: 5 }).heartbeatPassMs, 1, 'at least every millisecond')
  const sink = collectingSink()
  const { stream } = open(h, sink)
  stream.sendSnapshot([])
  const heartbeats = (): number => (sink.text().match(/^: /gm) ?? []).length
  const pass = (at: number): void => {
    now = at
    h.sendDueHeartbeats(now)
  }
  const lastWrite = now
  pass(lastWrite + 899)
  t.equal(heartbeats(), 0, 'silent for 899 ms: the next pass, 100 ms on, still comes before 1000 ms')
  pass(lastWrite + 900)
  t.equal(heartbeats(), 1, 'silent for 900 ms: the next pass could come after 1000 ms, so the comment goes now')
  t.equal(h.counters.heartbeatsSent, 1)
  pass(lastWrite + 1400)
  t.equal(heartbeats(), 1, 'the comment itself counts as a write')
  pass(lastWrite + 1800)
  t.equal(heartbeats(), 2, '900 ms after the comment, the next one')
  stream.close('deleted')
})
