import { Writable } from 'node:stream'
import t from 'tap'
import { InProcessTransport } from '../../src/bus/in-process-transport.js'
import { PriceBus } from '../../src/bus/price-bus.js'
import { systemClock } from '../../src/clock.js'
import { silentLogger } from '../../src/logger.js'
import { SessionRegistry } from '../../src/sessions/session-registry.js'
import { StreamHub } from '../../src/stream/stream-hub.js'

/** The registry over the real in-process bus and stream hub. */
function registry (maxSessionsPerUser: number): { sessions: SessionRegistry, bus: PriceBus, hub: StreamHub } {
  const bus = new PriceBus({ createTransport: (inbox) => new InProcessTransport(inbox), clock: systemClock, logger: silentLogger })
  const hub = new StreamHub({ settings: { flushIntervalMs: 100, heartbeatMs: 15_000, retryMs: 3000, slowConsumerMs: 10_000 }, clock: systemClock, logger: silentLogger })
  t.teardown(() => hub.stop())
  const sessions = new SessionRegistry({ policy: { maxSessionsPerUser, sessionTtlMs: 30_000, sessionMaxAgeMs: 86_400_000 }, bus, hub, clock: systemClock, logger: silentLogger })
  return { sessions, bus, hub }
}

t.test('a reload at the limit with the same tickers keeps their bus subscriptions', async (t) => {
  const { sessions, bus } = registry(1)
  const first = sessions.register('alice', ['AAPL', 'MSFT'])
  t.same(bus.subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 0 })
  const reload = sessions.register('alice', ['MSFT', 'AAPL'])
  t.ok(first.ok && reload.ok && reload.evicted[0] === first.session.sessionId, 'the first session was evicted')
  t.same(bus.subscriptions.counters, { subscribeTotal: 2, unsubscribeTotal: 0 }, 'nothing released and made again')
  t.equal(bus.subscriptions.size, 2)
  const other = sessions.register('alice', ['AAPL', 'NVDA'])
  t.same(bus.subscriptions.counters, { subscribeTotal: 3, unsubscribeTotal: 1 }, 'only the ticker nobody watches any more is released')
  if (other.ok) sessions.deactivate(other.session.sessionId, 'deleted')
  t.same(bus.subscriptions.counters, { subscribeTotal: 3, unsubscribeTotal: 3 })
  t.equal(bus.subscriptions.size, 0)
})

t.test('a stream whose first write throws ends its session and leaves nothing open', async (t) => {
  const { sessions, bus, hub } = registry(3)
  const reasons: string[] = []
  sessions.observeDeactivations((_session, reason) => reasons.push(reason))
  const registered = sessions.register('bob', ['AAPL'])
  if (!registered.ok) throw new Error('registration refused')
  // ServerResponse reports failed writes through 'error'; another sink may throw instead.
  const sink = new Writable({ write (_chunk, _encoding, callback) { callback() } })
  sink.write = () => { throw new Error('write after end') }
  const opened = sessions.openStream(registered.session.sessionId, () => sink)
  t.ok(opened.ok, 'the stream was attached, then ended')
  t.same(reasons, ['client_closed'], 'deactivated once')
  t.equal(sessions.activeCount, 0)
  t.equal(hub.openCount, 0, 'the hub holds no stream')
  t.equal(bus.subscriptions.size, 0, 'the bus subscription was released')
  t.equal(sessions.view(registered.session.sessionId), undefined)
})
