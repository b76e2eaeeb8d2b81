import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client'
import { BucketHistogram } from '../src/bucket-histogram.js'
import { DEACTIVATION_REASONS } from '../src/sessions/session.js'

export interface MetricsObservers {
  /** Time from request start to a 201 on POST /sessions. */
  registrationSeconds: (seconds: number) => void
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry
    metricsObservers: MetricsObservers
  }
}

/**
 * Prometheus metrics. The core keeps plain counters (so tests and this plugin read the same
 * numbers); each metric here reads them at scrape time instead of being updated on the hot
 * path. A registry per app instance keeps several apps in one process (tests) apart.
 */
export default fp(async function metricsPlugin (fastify) {
  const { sessions, streams, bus, redis } = fastify
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const gauge = (name: string, help: string, read: () => number): void => {
    registry.registerMetric(new Gauge({
      name,
      help,
      registers: [],
      collect () { this.set(read()) }
    }))
  }
  // A counter mirrored from a core counter: reset and re-add keeps it monotonic because the
  // core value is.
  const counter = (name: string, help: string, read: () => number): void => {
    registry.registerMetric(new Counter({
      name,
      help,
      registers: [],
      collect () {
        this.reset()
        this.inc(read())
      }
    }))
  }

  gauge('tickstream_sessions_active', 'Sessions registered and not yet deactivated.', () => sessions.activeCount)
  gauge('tickstream_streams_open', 'SSE responses being served.', () => streams.openCount)
  gauge('tickstream_bus_subscriptions', 'Tickers this instance is subscribed to on the bus.', () => bus.subscriptions.size)
  gauge('tickstream_priced_tickers', 'Tickers whose latest price this instance remembers for snapshots (never forgotten).', () => bus.pricedTickerCount)
  counter('tickstream_bus_subscribe_total', 'Bus subscriptions made (one per ticker going from 0 to 1 watcher).', () => bus.subscriptions.counters.subscribeTotal)
  counter('tickstream_bus_unsubscribe_total', 'Bus subscriptions released (one per ticker going from 1 to 0 watchers).', () => bus.subscriptions.counters.unsubscribeTotal)
  counter('tickstream_sessions_registered_total', 'Sessions registered.', () => sessions.counters.registered)
  counter('tickstream_prices_received_total', 'Valid prices taken from the bus for subscribed tickers.', () => bus.counters.pricesReceived)
  counter('tickstream_bus_messages_invalid_total', 'Bus messages dropped as malformed.', () => bus.counters.messagesInvalid)
  counter('tickstream_events_sent_total', 'SSE events written (snapshot, prices, end).', () => streams.counters.eventsSent)
  counter('tickstream_price_updates_conflated_total', 'Price updates replaced in a pending batch before being sent.', () => streams.counters.pricesConflated)
  counter('tickstream_heartbeats_sent_total', 'SSE heartbeat comments written.', () => streams.counters.heartbeatsSent)
  counter('tickstream_redis_silent_connections_dropped_total', 'Redis connections dropped for going silent while a PING was pending (0 in embedded mode).', () => redis?.counters.silentConnectionsDropped ?? 0)
  registry.registerMetric(new Counter({
    name: 'tickstream_sessions_deactivated_total',
    help: 'Sessions deactivated, by reason.',
    labelNames: ['reason'],
    registers: [],
    collect () {
      this.reset()
      for (const reason of DEACTIVATION_REASONS) this.inc({ reason }, sessions.counters.deactivated[reason])
    }
  }))

  // Histograms on hot paths (every registration, every prices event) are the core's
  // BucketHistogram, read at scrape time like the counters above.
  const registrationDuration = new BucketHistogram([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
  registry.registerMetric(histogramMetric('tickstream_registration_duration_seconds', 'Time to register a session (POST /sessions answered 201), from request start.', registrationDuration))
  const flushSize = new BucketHistogram([1, 2, 5, 10, 20, 50, 100])
  registry.registerMetric(histogramMetric('tickstream_flush_prices', 'Prices per prices event (after conflation).', flushSize))
  streams.observeFlushes((priceCount) => flushSize.observe(priceCount))

  fastify.decorate('metrics', registry)
  fastify.decorate('metricsObservers', { registrationSeconds: (seconds: number) => registrationDuration.observe(seconds) })
}, { name: 'tickstream-metrics', fastify: '5.x', dependencies: ['tickstream-sessions', 'tickstream-streams', 'tickstream-bus', 'tickstream-redis'] })

/**
 * A BucketHistogram as a prom-client metric: the registry asks `get()` at each scrape and
 * writes the values as given (`_bucket{le}`, `_sum`, `_count`), as it does for its own
 * histograms (same text, Prometheus and OpenMetrics). prom-client has no public type for a
 * metric it did not build, hence the cast: it has no `observe`, `labels` or `startTimer`, so
 * `registry.getSingleMetric(name)` must not be used on these two names. `resetMetrics()`
 * leaves them as they are.
 */
function histogramMetric (name: string, help: string, histogram: BucketHistogram): Metric {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({
      name,
      help,
      type: 'histogram',
      aggregator: 'sum',
      values: [
        ...histogram.cumulativeBuckets().map(({ le, count }) => ({ metricName: `${name}_bucket`, labels: { le }, value: count })),
        { metricName: `${name}_sum`, labels: {}, value: histogram.sum },
        { metricName: `${name}_count`, labels: {}, value: histogram.count }
      ]
    }),
    // The core's counts are the truth; a registry reset does not rewrite history.
    reset: () => {}
  }
  return metric as unknown as Metric
}
