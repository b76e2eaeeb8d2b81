import { fork, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import path from 'node:path'
import { Redis } from 'ioredis'
import type { ChurnServerListening, ChurnServerMeasurement, ChurnServerRequest, ChurnServerState } from './churn-server.js'
import { delay, REPO_ROOT } from './lib/process.js'
import { markdownTable, parseArgs, runAsScript, writeReport, type Chart } from './lib/report.js'

/**
 * `npm run load:churn`: sessions through every exit path (abort mid-stream, abort before
 * the first byte, DELETE, eviction, expiry, slow consumer) with prices flowing, then a leak
 * check: gauges 0, subscriptions made == released (and PUBSUB NUMSUB 0 with --redis), and
 * memory after a forced GC within 10 % of the post-warm-up value. Exits non-zero on a leak.
 *
 * The app runs in its own process (load/churn-server.ts, built and forked), so
 * the RSS read is the server's alone; the clients talk to it over real sockets, and ask it
 * over IPC for a full GC with a memory reading and for its counters. Both the V8 heap in use
 * and the RSS after a full GC must stay within 10 % of their post-warm-up values; both readings
 * are taken with nothing in flight, after a GC that also releases what V8 keeps for later.
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
  rss: { afterWarmupMb: number, afterChurnMb: number, ratio: number }
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

async function runOne (server: ChurnServer, baseUrl: string, port: number, index: number): Promise<ExitPath> {
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
      await server.ask({ type: 'flood', key: session.sessionId, tickers: SLOW_TICKERS })
      try {
        // The server cuts the reader-less stream off as a slow consumer: the session is gone.
        await waitFor(async () => {
          const res = await fetch(`${baseUrl}/sessions/${session.sessionId}`)
          await res.body?.cancel()
          return res.status === 404
        }, 30_000, 'a slow consumer was not cut off within 30 s')
      } finally {
        await server.ask({ type: 'stop-flood', key: session.sessionId })
      }
      stream.destroy()
      await stream.closed
      break
    }
  }
  return exitPath
}

const megabytes = (bytes: number): number => bytes / 1024 / 1024

/** Polls `done` every 20 ms; a run that would wait forever fails instead. */
async function waitFor (done: () => Promise<boolean>, timeoutMs: number, failure: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(failure)
    await delay(20)
  }
}

type Reply<T> = T extends { type: 'state' } ? ChurnServerState : T extends { type: 'measure' } ? ChurnServerMeasurement : null
type Question = ChurnServerRequest extends infer R ? R extends ChurnServerRequest ? Omit<R, 'id'> : never : never

/** The forked server and its IPC questions (state, GC-and-measure, the slow-consumer flood). */
export interface ChurnServer {
  port: number
  ask: <Q extends Question>(question: Q) => Promise<Reply<Q>>
  stop: () => Promise<void>
}

export async function startChurnServer (settings: Record<string, string>): Promise<ChurnServer> {
  // The settings travel as an argument; the environment only carries what Node itself needs
  // (NODE_OPTIONS cleared: a test runner's loaders are not the server's business).
  const child: ChildProcess = fork(path.join(REPO_ROOT, 'dist/load/churn-server.js'), [JSON.stringify(settings)], {
    cwd: REPO_ROOT,
    // Not the runner's own (tsx's loader): the server is built.
    execArgv: [],
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const pending = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  let exitReason: Error | undefined
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exitReason = new Error(`churn server exited (${code ?? signal})`)
    for (const waiter of pending.values()) waiter.reject(exitReason)
    pending.clear()
    resolve()
  }))
  // Once listening, an 'error' is a failed send, which its callback below reports to the asker.
  child.on('error', () => {})
  let nextId = 0
  const port = await new Promise<number>((resolve, reject) => {
    // Redis mode waits for its bus; a server that never gets there must not hang the run.
    const giveUp = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('churn server did not listen within 30 s'))
    }, 30_000)
    void exited.then(() => {
      clearTimeout(giveUp)
      reject(new Error(`${exitReason?.message ?? 'churn server exited'} before listening`))
    })
    // The process could not be started at all (no 'exit' follows).
    child.once('error', (err) => {
      clearTimeout(giveUp)
      reject(err)
    })
    child.on('message', (message: ChurnServerListening | { id: number, result?: unknown, error?: string }) => {
      if ('type' in message) {
        clearTimeout(giveUp)
        resolve(message.port)
        return
      }
      const waiter = pending.get(message.id)
      pending.delete(message.id)
      if (message.error !== undefined) waiter?.reject(new Error(message.error))
      else waiter?.resolve(message.result)
    })
  })
  return {
    port,
    ask: async <Q extends Question>(question: Q): Promise<Reply<Q>> => await new Promise((resolve, reject) => {
      if (exitReason !== undefined || !child.connected) {
        reject(exitReason ?? new Error('churn server is gone'))
        return
      }
      const id = nextId++
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      child.send({ ...question, id }, (err) => {
        if (err === null) return
        pending.delete(id)
        reject(err)
      })
    }),
    stop: async () => {
      if (exitReason !== undefined) return
      child.kill('SIGTERM')
      const forceKill = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(forceKill)
    }
  }
}

function gaugesOf (reading: ChurnServerState): ChurnResult['gauges'] {
  return { sessionsActive: reading.sessionsActive, streamsOpen: reading.streamsOpen, busSubscriptions: reading.busSubscriptions, responsesOpen: reading.responsesOpen }
}

/** Heap in use and RSS after the churn, as ratios of their post-warm-up values. */
function memoryGrowth (afterWarmup: ChurnServerMeasurement, afterChurn: ChurnServerMeasurement): { heap: number, rss: number } {
  return { heap: afterChurn.heapUsedBytes / afterWarmup.heapUsedBytes, rss: afterChurn.rssBytes / afterWarmup.rssBytes }
}

/**
 * The leak check, from the server's readings after warm-up and after the churn (and Redis's
 * `PUBSUB NUMSUB` in Redis mode): one line per leak, none when nothing leaked.
 */
export function findLeaks (afterWarmup: ChurnServerMeasurement, afterChurn: ChurnServerMeasurement, pubsubNumsub: Record<string, number> | undefined): string[] {
  const leaks: string[] = []
  for (const [name, value] of Object.entries(gaugesOf(afterChurn))) if (value !== 0) leaks.push(`${name} = ${value}`)
  if (afterChurn.subscriptionsMade !== afterChurn.subscriptionsReleased) leaks.push(`subscriptions made ${afterChurn.subscriptionsMade} != released ${afterChurn.subscriptionsReleased}`)
  const deactivatedTotal = Object.values(afterChurn.deactivated).reduce((a, b) => a + b, 0)
  if (deactivatedTotal !== afterChurn.registered) leaks.push(`registered ${afterChurn.registered} != deactivated ${deactivatedTotal}`)
  for (const [channel, count] of Object.entries(pubsubNumsub ?? {})) if (count !== 0) leaks.push(`PUBSUB NUMSUB ${channel} = ${count}`)
  const growth = memoryGrowth(afterWarmup, afterChurn)
  if (growth.heap > 1.1) leaks.push(`heap in use grew ${((growth.heap - 1) * 100).toFixed(1)} % after churn (limit 10 %)`)
  if (growth.rss > 1.1) leaks.push(`RSS grew ${((growth.rss - 1) * 100).toFixed(1)} % after churn (limit 10 %)`)
  return leaks
}

export async function runChurn (options: ChurnOptions): Promise<ChurnResult> {
  const server = await startChurnServer({
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
    ...(options.redisUrl === undefined ? {} : { REDIS_URL: options.redisUrl })
  })
  const port = server.port
  const baseUrl = `http://127.0.0.1:${port}`
  const started = Date.now()
  const byPath = Object.fromEntries(MIX.map(([p]) => [p, 0])) as Record<ExitPath, number>
  const samples: ChurnSample[] = []
  const sample = async (done: number): Promise<void> => {
    const state = await server.ask({ type: 'state' })
    const s = { at: (Date.now() - started) / 1000, done, active: state.sessionsActive, streams: state.streamsOpen, rssMb: megabytes(state.rssBytes) }
    samples.push(s)
    options.onSample?.(s)
  }
  try {
    let next = 0
    let done = 0
    const warmup = Math.max(1, Math.min(10_000, Math.floor(options.sessions / 10)))
    const sampler = setInterval(() => { void sample(done).catch(() => {}) }, 1000)
    /** Runs sessions (`concurrency` at a time) until `until` have been started, and all of them have ended. */
    const churnUntil = async (until: number): Promise<void> => {
      const worker = async (): Promise<void> => {
        while (next < until) {
          const index = next++
          byPath[await runOne(server, baseUrl, port, index)]++
          done++
        }
      }
      await Promise.all(Array.from({ length: options.concurrency }, worker))
    }
    /**
     * Both readings are taken the same way, with nothing in flight: every session ended
     * (expiring ones within TTL + a sweep; after 10 s what is left shows as a leak), every
     * response closed, a full GC that also releases what V8 keeps for later. (Until session 10 the warm-up's was taken mid-churn,
     * with 64 sessions in flight and fat prices queued, and compared with a settled one.)
     */
    const settledReading = async (): Promise<ChurnServerMeasurement> => {
      const drainDeadline = Date.now() + 10_000
      while ((await server.ask({ type: 'state' })).sessionsActive > 0 && Date.now() < drainDeadline) await delay(100)
      await sample(done)
      // Let the last closes and timers settle, then measure.
      await delay(500)
      return await server.ask({ type: 'measure', settle: true })
    }
    let afterWarmup: ChurnServerMeasurement
    let afterChurn: ChurnServerMeasurement
    try {
      await churnUntil(warmup)
      afterWarmup = await settledReading()
      await churnUntil(options.sessions)
      afterChurn = await settledReading()
    } finally {
      clearInterval(sampler)
    }

    let pubsubNumsub: Record<string, number> | undefined
    if (options.redisUrl !== undefined) {
      const admin = new Redis(options.redisUrl)
      const reply = await admin.call('PUBSUB', 'NUMSUB', ...[...TICKERS, ...SLOW_TICKERS].map((t) => `prices:${t}`)) as Array<string | number>
      await admin.quit()
      pubsubNumsub = {}
      for (let i = 0; i < reply.length; i += 2) pubsubNumsub[String(reply[i])] = Number(reply[i + 1])
    }
    const leaks = findLeaks(afterWarmup, afterChurn, pubsubNumsub)
    const growth = memoryGrowth(afterWarmup, afterChurn)
    return {
      sessions: options.sessions,
      byPath,
      seconds: (Date.now() - started) / 1000,
      deactivated: afterChurn.deactivated,
      leaks,
      gauges: gaugesOf(afterChurn),
      subscriptions: { made: afterChurn.subscriptionsMade, released: afterChurn.subscriptionsReleased },
      pubsubNumsub,
      heap: { afterWarmupMb: megabytes(afterWarmup.heapUsedBytes), afterChurnMb: megabytes(afterChurn.heapUsedBytes), ratio: growth.heap },
      rss: { afterWarmupMb: megabytes(afterWarmup.rssBytes), afterChurnMb: megabytes(afterChurn.rssBytes), ratio: growth.rss },
      samples
    }
  } finally {
    await server.stop()
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
      ['server RSS after warm-up / after churn (MB, after GC)', `${result.rss.afterWarmupMb.toFixed(1)} / ${result.rss.afterChurnMb.toFixed(1)} (${((result.rss.ratio - 1) * 100).toFixed(1)} %)`],
      ['leaks', result.leaks.length === 0 ? 'none' : result.leaks.join('; ')]
    ]) + '\n'
}

function positiveInteger (name: string, raw: string): number {
  const value = Number(raw)
  if (!(Number.isInteger(value) && value >= 1)) throw new Error(`--${name} must be a positive integer, got ${raw}`)
  return value
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const redisUrl = args.has('redis') ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined
  const options: ChurnOptions = {
    sessions: positiveInteger('sessions', args.get('sessions') ?? '100000'),
    concurrency: positiveInteger('concurrency', args.get('concurrency') ?? '64'),
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

runAsScript(import.meta.filename, main)
