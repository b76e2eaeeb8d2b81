import { connect } from 'node:net'
import path from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import tickstreamApp, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { toPriceUpdate } from '../src/price.js'
import { delay } from './lib/process.js'
import { markdownTable, parseArgs, writeReport, type Chart } from './lib/report.js'

/**
 * `npm run load:churn`: sessions through every exit path (abort mid-stream, abort before
 * the first byte, DELETE, eviction, expiry, slow consumer) with prices flowing, then a leak
 * check: gauges 0, subscriptions made == released (and PUBSUB NUMSUB 0 with --redis), and
 * memory after a forced GC within 10 % of the post-warm-up value. Exits non-zero on a leak.
 *
 * The app runs in this process, next to the clients (so it can force a GC); they talk to it
 * over real sockets. The memory check uses the V8 heap in use after a full GC, which is what
 * a leak would grow; RSS is reported beside it but keeps pages V8 has already committed.
 * Run with --expose-gc (the npm script does).
 *
 *   --sessions N (100000)  --concurrency C (64)  --redis  (REDIS_URL or redis://127.0.0.1:6379)
 */

export type ExitPath = 'abort_mid_stream' | 'abort_before_first_byte' | 'delete' | 'eviction' | 'expiry' | 'slow_consumer'

/**
 * Out of every 1000 sessions. The slow path is expensive (it must fill socket buffers), so it
 * is rare; it comes first so that even a short run has one.
 */
const MIX: Array<[ExitPath, number]> = [
  ['slow_consumer', 1], ['abort_mid_stream', 300], ['abort_before_first_byte', 100], ['delete', 200], ['eviction', 200], ['expiry', 199]
]

export interface ChurnOptions {
  sessions: number
  concurrency: number
  redisUrl: string | undefined
  /** Progress callback (samples for the chart). */
  onSample?: (sample: ChurnSample) => void
}

export interface ChurnSample { at: number, done: number, active: number, streams: number, rssMb: number }

export interface ChurnResult {
  sessions: number
  byPath: Record<ExitPath, number>
  seconds: number
  deactivated: Record<string, number>
  leaks: string[]
  gauges: { sessionsActive: number, streamsOpen: number, busSubscriptions: number, responsesOpen: number }
  subscriptions: { made: number, released: number }
  pubsubNumsub: Record<string, number> | undefined
  heap: { afterWarmupMb: number, afterChurnMb: number, ratio: number }
  rss: { afterWarmupMb: number, afterChurnMb: number }
  samples: ChurnSample[]
}

const TICKERS = Array.from({ length: 20 }, (_, i) => `C${String(i).padStart(2, '0')}`)
/** A slow consumer watches many fat tickers so its socket fills within a second or two. */
const SLOW_TICKERS = Array.from({ length: 40 }, (_, i) => `CSLOW${i}`)

function pathOf (index: number): ExitPath {
  // 389 is coprime with 1000: consecutive sessions spread over the whole mix.
  let slot = (index * 389) % 1000
  for (const [exitPath, share] of MIX) {
    if (slot < share) return exitPath
    slot -= share
  }
  return 'abort_mid_stream'
}

async function register (baseUrl: string, userId: string, tickers: string[]): Promise<{ sessionId: string, streamUrl: string }> {
  const res = await fetch(`${baseUrl}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId, tickers }) })
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`)
  return await res.json() as { sessionId: string, streamUrl: string }
}

interface ClientStream {
  destroy: () => void
  /** The connection closed. */
  closed: Promise<void>
  /** The server sent `event: end` (a keep-alive connection stays open after it), or the connection closed. */
  ended: Promise<void>
}

/** Opens a stream over a raw socket; resolves after the snapshot, or at once for `abort_at_once`. */
async function openStream (port: number, streamUrl: string, mode: 'read' | 'abort_at_once' | 'stop_reading'): Promise<ClientStream> {
  const socket = connect(port, '127.0.0.1')
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  let markEnded: () => void = () => {}
  const ended = new Promise<void>((resolve) => { markEnded = resolve })
  void closed.then(markEnded)
  socket.on('error', () => {})
  socket.write(`GET ${streamUrl} HTTP/1.1\r\nHost: x\r\n\r\n`)
  if (mode === 'abort_at_once') {
    socket.destroy()
    return { destroy: () => {}, closed, ended }
  }
  await new Promise<void>((resolve) => {
    let received = ''
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString()
      if (received.includes('event: snapshot')) {
        if (mode === 'stop_reading') socket.pause()
        resolve()
      }
      if (received.includes('event: end')) markEnded()
      // Only the tail can still hold a partial "event: end".
      if (received.length > 64) received = received.slice(-32)
    })
    socket.once('close', () => resolve())
  })
  return { destroy: () => socket.destroy(), closed, ended }
}

async function runOne (app: FastifyInstance, baseUrl: string, port: number, index: number): Promise<ExitPath> {
  const exitPath = pathOf(index)
  const tickers = [TICKERS[index % TICKERS.length] ?? 'C00', TICKERS[(index * 7 + 3) % TICKERS.length] ?? 'C01']
  const user = `churn-${index}`
  switch (exitPath) {
    case 'abort_mid_stream': {
      const session = await register(baseUrl, user, tickers)
      const stream = await openStream(port, session.streamUrl, 'read')
      stream.destroy()
      await stream.closed
      break
    }
    case 'abort_before_first_byte': {
      // Either the route sees a closed client (deactivated at once) or the request never
      // reaches it (the session stays pending and expires): both must leave nothing.
      const session = await register(baseUrl, user, tickers)
      await (await openStream(port, session.streamUrl, 'abort_at_once')).closed
      break
    }
    case 'delete': {
      const session = await register(baseUrl, user, tickers)
      const stream = index % 2 === 0 ? await openStream(port, session.streamUrl, 'read') : undefined
      await fetch(`${baseUrl}/sessions/${session.sessionId}`, { method: 'DELETE' })
      await stream?.ended
      stream?.destroy()
      await stream?.closed
      break
    }
    case 'eviction': {
      const first = await register(baseUrl, user, tickers)
      const stream = await openStream(port, first.streamUrl, 'read')
      const second = await register(baseUrl, user, tickers)
      await stream.ended
      stream.destroy()
      await stream.closed
      await fetch(`${baseUrl}/sessions/${second.sessionId}`, { method: 'DELETE' })
      break
    }
    case 'expiry':
      await register(baseUrl, user, tickers)
      break
    case 'slow_consumer': {
      const session = await register(baseUrl, user, SLOW_TICKERS)
      const stream = await openStream(port, session.streamUrl, 'stop_reading')
      const pad = 'x'.repeat(7000)
      const flood = setInterval(() => {
        const updates = SLOW_TICKERS.map((ticker) => toPriceUpdate({ ticker, price: 1, pad }, Date.now()))
        void app.bus.publish(updates.flatMap((update) => update.ok ? [update.update] : []))
      }, 5)
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (app.sessions.view(session.sessionId) === undefined) {
            clearInterval(check)
            resolve()
          }
        }, 20)
      })
      clearInterval(flood)
      stream.destroy()
      await stream.closed
      break
    }
  }
  return exitPath
}

const megabytes = (bytes: number): number => bytes / 1024 / 1024

/** A full GC: `--expose-gc`'s global when present (npm run load:churn), else enabled at run time. */
function forceGc (): void {
  let gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
  gc()
}

export async function runChurn (options: ChurnOptions): Promise<ChurnResult> {
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'error',
    FEED: 'simulated',
    FEED_TICKERS: TICKERS.join(','),
    FEED_RATE: '200',
    RATE_LIMIT_MAX: '0',
    MAX_SESSIONS_PER_USER: '1',
    SESSION_TTL_MS: '1500',
    SWEEP_INTERVAL_MS: '100',
    SLOW_CONSUMER_MS: '300',
    FLUSH_INTERVAL_MS: '50',
    ...(options.redisUrl === undefined ? {} : { REDIS_URL: options.redisUrl, FEED: 'simulated' })
  })
  const app = Fastify(serverOptions(config))
  await app.register(tickstreamApp, { config, loadShedding: { maxEventLoopDelayMs: 0, maxEventLoopUtilization: 0 } })
  const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(baseUrl).port)
  const started = Date.now()
  const byPath = Object.fromEntries(MIX.map(([p]) => [p, 0])) as Record<ExitPath, number>
  const samples: ChurnSample[] = []
  const sample = (done: number): void => {
    const s = { at: (Date.now() - started) / 1000, done, active: app.sessions.activeCount, streams: app.streams.openCount, rssMb: megabytes(process.memoryUsage().rss) }
    samples.push(s)
    options.onSample?.(s)
  }
  try {
    if (app.redis !== undefined) while (!app.bus.isReady) await delay(50)
    let next = 0
    let done = 0
    let heapAfterWarmupMb = 0
    let rssAfterWarmupMb = 0
    const warmup = Math.min(10_000, Math.floor(options.sessions / 10))
    const sampler = setInterval(() => sample(done), 1000)
    const worker = async (): Promise<void> => {
      while (next < options.sessions) {
        const index = next++
        byPath[await runOne(app, baseUrl, port, index)]++
        done++
        if (done === warmup) {
          forceGc()
          const memory = process.memoryUsage()
          heapAfterWarmupMb = megabytes(memory.heapUsed)
          rssAfterWarmupMb = megabytes(memory.rss)
        }
      }
    }
    await Promise.all(Array.from({ length: options.concurrency }, worker))
    // Expiring sessions end within TTL + a sweep; wait for the registry to empty.
    while (app.sessions.activeCount > 0) await delay(100)
    await app.streams.whenResponsesClosed()
    clearInterval(sampler)
    sample(done)
    // Let the last closes and timers settle, then measure.
    await delay(500)
    forceGc()
    const memoryAfter = process.memoryUsage()
    const heapAfterChurnMb = megabytes(memoryAfter.heapUsed)

    const counters = app.sessions.counters
    const subscriptions = app.bus.subscriptions.counters
    const gauges = { sessionsActive: app.sessions.activeCount, streamsOpen: app.streams.openCount, busSubscriptions: app.bus.subscriptions.size, responsesOpen: app.streams.responseCount }
    let pubsubNumsub: Record<string, number> | undefined
    if (options.redisUrl !== undefined) {
      const admin = new Redis(options.redisUrl)
      const reply = await admin.call('PUBSUB', 'NUMSUB', ...[...TICKERS, ...SLOW_TICKERS].map((t) => `prices:${t}`)) as Array<string | number>
      await admin.quit()
      pubsubNumsub = {}
      for (let i = 0; i < reply.length; i += 2) pubsubNumsub[String(reply[i])] = Number(reply[i + 1])
    }
    const leaks: string[] = []
    for (const [name, value] of Object.entries(gauges)) if (value !== 0) leaks.push(`${name} = ${value}`)
    if (subscriptions.subscribeTotal !== subscriptions.unsubscribeTotal) leaks.push(`subscriptions made ${subscriptions.subscribeTotal} != released ${subscriptions.unsubscribeTotal}`)
    const deactivatedTotal = Object.values(counters.deactivated).reduce((a, b) => a + b, 0)
    if (deactivatedTotal !== counters.registered) leaks.push(`registered ${counters.registered} != deactivated ${deactivatedTotal}`)
    for (const [channel, count] of Object.entries(pubsubNumsub ?? {})) if (count !== 0) leaks.push(`PUBSUB NUMSUB ${channel} = ${count}`)
    const ratio = heapAfterChurnMb / heapAfterWarmupMb
    if (ratio > 1.1) leaks.push(`heap in use grew ${((ratio - 1) * 100).toFixed(1)} % after churn (limit 10 %)`)
    return {
      sessions: options.sessions,
      byPath,
      seconds: (Date.now() - started) / 1000,
      deactivated: { ...counters.deactivated },
      leaks,
      gauges,
      subscriptions: { made: subscriptions.subscribeTotal, released: subscriptions.unsubscribeTotal },
      pubsubNumsub,
      heap: { afterWarmupMb: heapAfterWarmupMb, afterChurnMb: heapAfterChurnMb, ratio },
      rss: { afterWarmupMb: rssAfterWarmupMb, afterChurnMb: megabytes(memoryAfter.rss) },
      samples
    }
  } finally {
    await app.close()
  }
}

function summary (result: ChurnResult, command: string): string {
  return `# Churn: ${result.sessions} sessions through every exit path (${result.seconds.toFixed(0)} s)\n\n\`${command}\`\n\n` +
    markdownTable(['exit path', 'sessions'], Object.entries(result.byPath)) + '\n\n' +
    markdownTable(['deactivation reason', 'count'], Object.entries(result.deactivated)) + '\n\n' +
    markdownTable(['check', 'value'], [
      ['sessions_active / streams_open / bus_subscriptions / open responses', `${result.gauges.sessionsActive} / ${result.gauges.streamsOpen} / ${result.gauges.busSubscriptions} / ${result.gauges.responsesOpen}`],
      ['bus subscriptions made / released', `${result.subscriptions.made} / ${result.subscriptions.released}`],
      ['PUBSUB NUMSUB (Redis mode)', result.pubsubNumsub === undefined ? 'n/a (embedded)' : JSON.stringify(result.pubsubNumsub)],
      ['V8 heap in use after warm-up / after churn (MB, after GC)', `${result.heap.afterWarmupMb.toFixed(1)} / ${result.heap.afterChurnMb.toFixed(1)} (${((result.heap.ratio - 1) * 100).toFixed(1)} %)`],
      ['RSS after warm-up / after churn (MB, after GC)', `${result.rss.afterWarmupMb.toFixed(1)} / ${result.rss.afterChurnMb.toFixed(1)}`],
      ['leaks', result.leaks.length === 0 ? 'none' : result.leaks.join('; ')]
    ]) + '\n'
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const redisUrl = args.has('redis') ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined
  const options: ChurnOptions = {
    sessions: Number(args.get('sessions') ?? 100_000),
    concurrency: Number(args.get('concurrency') ?? 64),
    redisUrl,
    onSample: (s) => { if (Math.round(s.at) % 5 === 0) process.stderr.write(`${s.at.toFixed(0)} s: ${s.done} done, ${s.active} active, ${s.streams} streams, RSS ${s.rssMb.toFixed(0)} MB\n`) }
  }
  const result = await runChurn(options)
  const command = `npm run load:churn -- --sessions ${options.sessions} --concurrency ${options.concurrency}${redisUrl === undefined ? '' : ' --redis'}`
  const charts: Chart[] = [
    { title: 'sessions done', yLabel: 'sessions', series: [{ name: 'done', points: result.samples.map((s) => [s.at, s.done] as [number, number]) }] },
    { title: 'active sessions and open streams', yLabel: 'count', series: [{ name: 'active', points: result.samples.map((s) => [s.at, s.active] as [number, number]) }, { name: 'streams', points: result.samples.map((s) => [s.at, s.streams] as [number, number]) }] },
    { title: 'RSS', yLabel: 'MB', series: [{ name: 'rss', points: result.samples.map((s) => [s.at, s.rssMb] as [number, number]) }] }
  ]
  const text = summary(result, command)
  const files = writeReport(`churn${redisUrl === undefined ? '' : '-redis'}`, result, text, charts)
  process.stdout.write(`${text}\nwritten: ${files.json}, ${files.markdown}, ${files.svg}\n`)
  if (result.leaks.length > 0) process.exit(1)
}

if (process.argv[1] !== undefined && import.meta.filename === path.resolve(process.argv[1])) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
