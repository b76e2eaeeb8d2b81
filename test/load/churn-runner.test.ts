import t from 'tap'
import { findLeaks, startChurnServer } from '../../load/churn.js'
import type { ChurnServerMeasurement } from '../../load/churn-server.js'

/** A clean end-of-run reading: every gauge 0, everything made was released. */
function reading (overrides: Partial<ChurnServerMeasurement> = {}): ChurnServerMeasurement {
  return {
    sessionsActive: 0,
    streamsOpen: 0,
    busSubscriptions: 0,
    responsesOpen: 0,
    rssBytes: 100 * 1024 * 1024,
    heapUsedBytes: 20 * 1024 * 1024,
    registered: 10,
    deactivated: { evicted: 4, expired: 6 },
    subscriptionsMade: 3,
    subscriptionsReleased: 3,
    ...overrides
  }
}

t.test('the churn leak check passes clean readings, memory within 10 % either way', async (t) => {
  t.same(findLeaks(reading(), reading(), undefined), [])
  t.same(findLeaks(reading(), reading({ rssBytes: 109 * 1024 * 1024, heapUsedBytes: 21 * 1024 * 1024 }), { 'prices:A': 0 }), [])
  t.same(findLeaks(reading(), reading({ rssBytes: 50 * 1024 * 1024 }), undefined), [], 'shrinking is no leak')
})

t.test('the churn leak check names every kind of leak', async (t) => {
  const leaks = findLeaks(reading(), reading({
    sessionsActive: 2,
    responsesOpen: 1,
    subscriptionsReleased: 2,
    registered: 11,
    rssBytes: 120 * 1024 * 1024,
    heapUsedBytes: 25 * 1024 * 1024
  }), { 'prices:A': 0, 'prices:B': 1 })
  t.same(leaks, [
    'sessionsActive = 2',
    'responsesOpen = 1',
    'subscriptions made 3 != released 2',
    'registered 11 != deactivated 10',
    'PUBSUB NUMSUB prices:B = 1',
    'heap in use grew 25.0 % after churn (limit 10 %)',
    'RSS grew 20.0 % after churn (limit 10 %)'
  ])
})

t.test('questions to a churn server that has exited fail at once instead of hanging the run', async (t) => {
  const server = await startChurnServer({ HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'error', FEED: 'none', RATE_LIMIT_MAX: '0' })
  const state = await server.ask({ type: 'state' })
  t.equal(state.sessionsActive, 0, 'the live server answers')
  await server.stop()
  await t.rejects(server.ask({ type: 'state' }), /churn server exited/)
  await server.stop()
  t.pass('stopping twice is harmless')
})
