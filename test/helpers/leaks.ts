import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { metric, metrics } from './http.js'

/**
 * The pairing invariants an operator can alert on, checked through /metrics: nothing is
 * active, every bus subscription made was released, every registration was deactivated.
 */
export async function assertNothingLeft (t: Test, app: FastifyInstance, baseUrl: string): Promise<void> {
  await app.streams.whenResponsesClosed()
  const values = await metrics(baseUrl)
  t.equal(metric(values, 'tickstream_sessions_active'), 0, 'no active session')
  t.equal(metric(values, 'tickstream_streams_open'), 0, 'no open stream')
  t.equal(metric(values, 'tickstream_bus_subscriptions'), 0, 'no bus subscription')
  t.equal(metric(values, 'tickstream_bus_subscribe_total'), metric(values, 'tickstream_bus_unsubscribe_total'), 'every subscription released')
  t.ok(metric(values, 'tickstream_bus_subscribe_total') > 0, 'subscriptions were made')
  const deactivated = [...values.entries()]
    .filter(([series]) => series.startsWith('tickstream_sessions_deactivated_total{'))
    .reduce((sum, [, value]) => sum + value, 0)
  t.equal(deactivated, metric(values, 'tickstream_sessions_registered_total'), 'every registered session deactivated once')
  t.equal(app.streams.responseCount, 0, 'no response left open at the socket level')
}

/** Counts deactivations per session id and reason, to prove each happens exactly once. */
export function recordDeactivations (app: FastifyInstance): Map<string, string[]> {
  const seen = new Map<string, string[]>()
  app.sessions.observeDeactivations((session, reason) => {
    seen.set(session.id, [...(seen.get(session.id) ?? []), reason])
  })
  return seen
}
