import t from 'tap'
import { InProcessTransport } from '../../src/bus/in-process-transport.js'
import { PriceBus } from '../../src/bus/price-bus.js'
import { systemClock } from '../../src/clock.js'
import { silentLogger, type LevelName, type Logger } from '../../src/logger.js'
import { SessionRegistry } from '../../src/sessions/session-registry.js'
import { StreamHub } from '../../src/stream/stream-hub.js'

/**
 * The registry's debug line for every ended session is built only when debug is on: with
 * thousands of evictions a second, building it for pino to drop was measurable
 * (BENCHMARKS.md, session 9). A logger that records its calls shows both sides.
 */
function recordingLogger (debugOn: boolean): { logger: Logger, debugCalls: object[], levelsAsked: LevelName[] } {
  const debugCalls: object[] = []
  const levelsAsked: LevelName[] = []
  const logger: Logger = {
    ...silentLogger,
    debug: (obj: object | string) => { debugCalls.push(typeof obj === 'string' ? { msg: obj } : obj) },
    isLevelEnabled: (level) => {
      levelsAsked.push(level)
      return debugOn
    }
  }
  return { logger, debugCalls, levelsAsked }
}

function registry (logger: Logger): SessionRegistry {
  const bus = new PriceBus({ createTransport: (inbox) => new InProcessTransport(inbox), clock: systemClock, logger })
  const hub = new StreamHub({ settings: { flushIntervalMs: 100, heartbeatMs: 15_000, retryMs: 3000, slowConsumerMs: 10_000 }, clock: systemClock, logger })
  t.teardown(() => hub.stop())
  return new SessionRegistry({ policy: { maxSessionsPerUser: 1, sessionTtlMs: 30_000, sessionMaxAgeMs: 86_400_000 }, bus, hub, clock: systemClock, logger })
}

t.test('with debug off, an eviction and a DELETE ask the level and log nothing', async (t) => {
  const { logger, debugCalls, levelsAsked } = recordingLogger(false)
  const sessions = registry(logger)
  const first = sessions.register('alice', ['AAPL'])
  const second = sessions.register('alice', ['AAPL'])
  t.ok(first.ok && second.ok && second.evicted.length === 1, 'the second registration evicted the first')
  if (second.ok) t.ok(sessions.deactivate(second.session.sessionId, 'deleted'))
  t.same(debugCalls, [], 'no debug call at all')
  t.same(levelsAsked, ['debug', 'debug'], 'the level was asked once per ended session')
})

t.test('with debug on, each ended session is one debug line with its id prefix, reason and lifetime', async (t) => {
  const { logger, debugCalls } = recordingLogger(true)
  const sessions = registry(logger)
  const first = sessions.register('bob', ['AAPL'])
  sessions.register('bob', ['MSFT'])
  t.equal(debugCalls.length, 1)
  t.match(debugCalls[0], { sessionId: first.ok ? first.session.sessionId.slice(0, 8) : 'none', reason: 'evicted', lifetimeMs: Number })
})
