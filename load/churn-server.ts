import { Session } from 'node:inspector/promises'
import Fastify from 'fastify'
import tickstreamApp, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { toPriceUpdate, type PriceUpdate } from '../src/price.js'
import { tuneGcAsTheServerDoes } from './lib/gc.js'

/**
 * For `npm run load:churn`: the app in a process of its own, so that its RSS is its own and
 * not mixed with the churn's clients. The runner (load/churn.ts) forks it and asks over IPC
 * for what only the process itself can do or see: a full GC with a memory
 * reading, the registry's and the bus's counters, and a flood of fat prices for the
 * slow-consumer path. Its settings come as one JSON argument. It exits when the runner goes
 * away (the IPC channel closes), so a killed run leaves no server behind.
 */

export type ChurnServerRequest =
  | { id: number, type: 'state' }
  /** `settle`: first wait until every stream response has closed (both readings of a run). */
  | { id: number, type: 'measure', settle: boolean }
  /** Fat prices for `tickers` every 5 ms until `stop-flood` with the same `key`; floods overlap. */
  | { id: number, type: 'flood', key: string, tickers: string[] }
  | { id: number, type: 'stop-flood', key: string }

export interface ChurnServerState {
  sessionsActive: number
  streamsOpen: number
  busSubscriptions: number
  responsesOpen: number
  rssBytes: number
}

export interface ChurnServerMeasurement extends ChurnServerState {
  heapUsedBytes: number
  registered: number
  deactivated: Record<string, number>
  subscriptionsMade: number
  subscriptionsReleased: number
}

/** The first message: the server listens on `port` (and in Redis mode its bus is ready). */
export interface ChurnServerListening { type: 'listening', port: number }

// The guard below fails only when started by hand; the runner always forks with a channel.
const processSend = process.send?.bind(process)
/* c8 ignore next */
if (processSend === undefined) throw new Error('churn-server must be forked with an IPC channel')
const send: (message: unknown) => boolean = processSend

const inspectorSession = new Session()
inspectorSession.connect()

/**
 * A full GC that also hands back what V8 keeps for later (DevTools' "collect garbage", V8's
 * low-memory notification): the young generation shrunk to its minimum, freed pages released.
 * `gc()` (--expose-gc) leaves both as they are, and how much of that happened to be resident
 * spread the RSS after it over 21 % (122-148 MB) across ten readings of one run, with no trend and nothing
 * leaked (BENCHMARKS.md, session 10).
 */
async function collectAllAvailableGarbage (): Promise<void> {
  await inspectorSession.post('HeapProfiler.collectGarbage')
}

// The runner's explicit settings, not this process's environment: an exported REDIS_URL or
// JWT_SECRET must not change what the run measures.
const config = loadConfig(JSON.parse(process.argv[2] ?? '{}') as Record<string, string>)
tuneGcAsTheServerDoes()
const app = Fastify(serverOptions(config))
// The churn is about leaks, not overload: never refuse work for a busy event loop.
await app.register(tickstreamApp, { config, loadShedding: { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0 } })
const address = await app.listen({ host: config.host, port: config.port })
while (!app.bus.isReady) await new Promise((resolve) => setTimeout(resolve, 50))

const floods = new Map<string, NodeJS.Timeout>()
// Fat prices (7 KB each) fill a reader-less socket within a second or two.
const PAD = 'x'.repeat(7000)

function state (): ChurnServerState {
  return {
    sessionsActive: app.sessions.activeCount,
    streamsOpen: app.streams.openCount,
    busSubscriptions: app.bus.subscriptions.size,
    responsesOpen: app.streams.responseCount,
    rssBytes: process.memoryUsage().rss
  }
}

async function answer (request: ChurnServerRequest): Promise<ChurnServerState | ChurnServerMeasurement | null> {
  switch (request.type) {
    case 'state':
      return state()
    case 'measure': {
      // At the end, streams ended by the runner may still be flushing out: measure once they
      // are gone, or after 10 s, when what is left shows as `responsesOpen` (a leak).
      if (request.settle) await Promise.race([app.streams.whenResponsesClosed(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())])
      await collectAllAvailableGarbage()
      const counters = app.sessions.counters
      const subscriptions = app.bus.subscriptions.counters
      return {
        ...state(),
        heapUsedBytes: process.memoryUsage().heapUsed,
        registered: counters.registered,
        deactivated: { ...counters.deactivated },
        subscriptionsMade: subscriptions.subscribeTotal,
        subscriptionsReleased: subscriptions.unsubscribeTotal
      }
    }
    case 'flood':
      clearInterval(floods.get(request.key))
      floods.set(request.key, setInterval(() => {
        const updates: PriceUpdate[] = []
        for (const ticker of request.tickers) {
          const result = toPriceUpdate({ ticker, price: 1, pad: PAD }, Date.now())
          if (result.ok) updates.push(result.update)
        }
        void app.bus.publish(updates)
      }, 5))
      return null
    case 'stop-flood':
      clearInterval(floods.get(request.key))
      floods.delete(request.key)
      return null
  }
}

process.on('message', (request: ChurnServerRequest) => {
  answer(request).then(
    (result) => send({ id: request.id, result }),
    (err: unknown) => send({ id: request.id, error: err instanceof Error ? err.stack ?? err.message : String(err) })
  )
})
function stop (exitCode: number): void {
  for (const flood of floods.values()) clearInterval(flood)
  void app.close().finally(() => process.exit(exitCode))
}
process.once('SIGTERM', () => stop(0))
// The runner died without stopping us (a test timeout, a kill): do not serve on as an orphan.
process.once('disconnect', () => stop(1))
send({ type: 'listening', port: Number(new URL(address).port) } satisfies ChurnServerListening)
