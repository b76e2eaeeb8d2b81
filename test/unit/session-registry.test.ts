import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { InProcessTransport } from '../../src/bus/in-process-transport.js'
import { PriceBus } from '../../src/bus/price-bus.js'
import { systemClock, type Clock } from '../../src/clock.js'
import { silentLogger, type Logger } from '../../src/logger.js'
import { SessionRegistry } from '../../src/sessions/session-registry.js'
import type { DeactivationReason } from '../../src/sessions/session.js'
import { StreamHub } from '../../src/stream/stream-hub.js'

interface Setup {
  maxSessionsPerUser: number
  clock?: Clock
  /** Called before the in-process transport releases a ticker; may throw. */
  beforeUnsubscribe?: (ticker: string) => void
  logger?: Logger
}

/** The registry over the real in-process bus and stream hub; deactivations recorded per session. */
function registry (t: Test, setup: Setup): { sessions: SessionRegistry, bus: PriceBus, hub: StreamHub, ended: Map<string, DeactivationReason[]> } {
  const clock = setup.clock ?? systemClock
  const bus = new PriceBus({
    createTransport: (inbox) => {
      const transport = new InProcessTransport(inbox)
      const unsubscribe = transport.unsubscribe.bind(transport)
      transport.unsubscribe = (ticker) => {
        setup.beforeUnsubscribe?.(ticker)
        unsubscribe(ticker)
      }
      return transport
    },
    clock,
    logger: setup.logger ?? silentLogger
  })
  const hub = new StreamHub({ settings: { flushIntervalMs: 100, heartbeatMs: 15_000, retryMs: 3000, slowConsumerMs: 10_000 }, clock, logger: silentLogger })
  t.teardown(() => hub.stop())
  const sessions = new SessionRegistry({ policy: { maxSessionsPerUser: setup.maxSessionsPerUser, sessionTtlMs: 1000, sessionMaxAgeMs: 5000 }, bus, hub, clock, logger: setup.logger ?? silentLogger })
  const ended = new Map<string, DeactivationReason[]>()
  sessions.observeDeactivations((session, reason) => ended.set(session.id, [...(ended.get(session.id) ?? []), reason]))
  return { sessions, bus, hub, ended }
}

function registered (sessions: SessionRegistry, userId: string, tickers: string[]): { id: string, evicted: string[] } {
  const result = sessions.register(userId, tickers)
  if (!result.ok) throw new Error(`registration refused: ${result.error}`)
  return { id: result.session.sessionId, evicted: result.evicted }
}

/** A response stand-in that keeps what is written. */
function collectingSink (): Writable & { text: () => string } {
  const chunks: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _encoding, callback) { chunks.push(chunk.toString()); callback() } })
  return Object.assign(sink, { text: () => chunks.join('') })
}

t.test('a ticker an evicted session was the last to watch keeps its subscription when the new session watches it too', async (t) => {
  const { sessions, bus } = registry(t, { maxSessionsPerUser: 1 })
  const first = registered(sessions, 'alice', ['AAPL', 'MSFT'])
  t.same(bus.subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 0 })
  const again = registered(sessions, 'alice', ['MSFT', 'AAPL'])
  t.same(again.evicted, [first.id], 'the first session was evicted')
  t.same(bus.subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 0 }, 'nothing released and made again')
  t.equal(bus.subscriptions.size, 2)
  const other = registered(sessions, 'alice', ['AAPL', 'NVDA'])
  t.same(bus.subscriptions.counters, { subscribeTotal: 3, unsubscribeTotal: 1 }, 'only the ticker nobody watches any more is released')
  sessions.deactivate(other.id, 'deleted')
  t.same(bus.subscriptions.counters, { subscribeTotal: 3, unsubscribeTotal: 3 })
  t.equal(bus.subscriptions.size, 0)
})

t.test('every overdue session of the user is ended as expired, side by side in the list or streaming past max age', async (t) => {
  // A fake clock (time is the one thing tests may pin); no sweeper runs here.
  let now = 1_000_000
  const { sessions, ended } = registry(t, { maxSessionsPerUser: 3, clock: () => now })
  const first = registered(sessions, 'carol', ['AAPL'])
  const second = registered(sessions, 'carol', ['MSFT'])
  const streaming = registered(sessions, 'carol', ['NVDA'])
  const sink = collectingSink()
  t.ok(sessions.openStream(streaming.id, () => sink).ok)
  now += 1000
  const fourth = registered(sessions, 'carol', ['AAPL'])
  t.same(fourth.evicted, [], 'the two overdue ones made room')
  t.same([ended.get(first.id), ended.get(second.id), ended.get(streaming.id)], [['expired'], ['expired'], undefined])
  now += 4000
  const fifth = registered(sessions, 'carol', ['MSFT'])
  t.same(fifth.evicted, [])
  t.same([ended.get(streaming.id), ended.get(fourth.id)], [['expired'], ['expired']], 'the stream at max age and the pending one past its TTL')
  t.match(sink.text(), /event: end\ndata: \{"reason":"expired"\}/, 'the stream was told')
  t.equal(sessions.activeCount, 1, 'only the newest is left')
})

t.test('a release that throws is logged; the session is still ended once and counted, and the registration evicting it goes on', async (t) => {
  let failNext = false
  const errors: object[] = []
  const { sessions, bus, ended } = registry(t, {
    maxSessionsPerUser: 1,
    logger: { ...silentLogger, error: (obj: object | string) => { errors.push(typeof obj === 'string' ? { msg: obj } : obj) } },
    beforeUnsubscribe: () => {
      if (!failNext) return
      failNext = false
      throw new Error('unsubscribe failed')
    }
  })
  const first = registered(sessions, 'dora', ['AAPL'])
  failNext = true
  const second = registered(sessions, 'dora', ['MSFT'])
  t.same(second.evicted, [first.id])
  t.same(ended.get(first.id), ['evicted'], 'observed once')
  t.equal(sessions.counters.deactivated.evicted, 1, 'counted')
  t.match(errors, [{ err: { message: 'unsubscribe failed' }, reason: 'evicted' }], 'logged with the error')
  t.equal(sessions.activeCount, 1)
  sessions.deactivate(second.id, 'deleted')
  t.equal(bus.subscriptions.size, 0, 'the next release works')
})

t.test('a stream whose first write throws ends its session and leaves nothing open', async (t) => {
  const { sessions, bus, hub, ended } = registry(t, { maxSessionsPerUser: 3 })
  const session = registered(sessions, 'bob', ['AAPL'])
  // ServerResponse reports failed writes through 'error'; another sink may throw instead.
  const sink = collectingSink()
  sink.write = () => { throw new Error('write after end') }
  const opened = sessions.openStream(session.id, () => sink)
  t.ok(opened.ok, 'the stream was attached, then ended')
  t.same(ended.get(session.id), ['client_closed'], 'deactivated once')
  t.equal(sessions.activeCount, 0)
  t.equal(hub.openCount, 0, 'the hub holds no stream')
  await hub.whenResponsesClosed()
  t.equal(hub.responseCount, 0, 'its response was destroyed and let go')
  t.equal(bus.subscriptions.size, 0, 'the bus subscription was released')
  t.equal(sessions.view(session.id), undefined)
})
