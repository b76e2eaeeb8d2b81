import { ensureNchanInstalled, startNchan } from './lib/nchan.js'
import { delay, percentile, sampleProcesses, startTickstream, type Server } from './lib/process.js'
import { markdownTable, parseArgs, runAsScript, writeReport, type Chart } from './lib/report.js'
import { SseClientPool } from './lib/sse-clients.js'

/**
 * `npm run load:fanout`: N concurrent SSE streams, each watching K of U tickers, a publisher
 * pushing R prices/s stamped with `ts`; staleness (receive time - ts), delivered prices/s,
 * failed opens, early ends, and the server's CPU time and RSS from /proc. The peer, nchan in
 * one nginx worker, gets the identical workload in the same run.
 *
 *   --streams N (5000)  --tickers-per-stream K (5)  --universe U (50)  --rate R (50)
 *   --warmup S (5)  --seconds S (20)  --targets tickstream,nchan
 */

export interface FanoutOptions {
  streams: number
  tickersPerStream: number
  universe: number
  rate: number
  warmupSeconds: number
  measureSeconds: number
}

export interface FanoutResult {
  target: string
  streams: number
  opened: number
  failedOpens: number
  earlyEnds: number
  deliveredPerSecond: number
  staleness: { p50: number, p99: number, p999: number, max: number }
  cpuMicrosPerPrice: number
  /**
   * The kernel's part of `cpuMicrosPerPrice` (system time): mostly the socket writes. On
   * loopback the receiving side's TCP processing largely runs within the writer's system
   * call too (how much is charged to the writer depends on the kernel's accounting). It
   * grows with the number of writes a server makes, which no server can avoid entirely.
   */
  kernelCpuMicrosPerPrice: number
  cpuPercent: number
  rssPerStreamBytes: number
  rssBytes: number
  timeline: Array<{ at: number, deliveredPerSecond: number, p99: number }>
}

export interface FanoutTarget {
  name: string
  start: (nodeArgs?: string[]) => Promise<Server>
  /** Registers when needed and returns the stream path for these tickers. */
  streamPath: (server: Server, tickers: string[], index: number) => Promise<string>
  publish: (server: Server, price: { ticker: string, price: number, ts: number }) => Promise<void>
}

const PUBLISH_TOKEN = 'load-publish-token'

export const TICKSTREAM_TARGET: FanoutTarget = {
  name: 'tickstream',
  start: async (nodeArgs = []) => await startTickstream({ FEED: 'none', RATE_LIMIT_MAX: '0', PUBLISH_TOKEN, SESSION_TTL_MS: '600000' }, nodeArgs),
  streamPath: async (server, tickers, index) => {
    const res = await fetch(`${server.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: `fan-${index}`, tickers }) })
    if (res.status !== 201) throw new Error(`register failed: ${res.status}`)
    return ((await res.json()) as { streamUrl: string }).streamUrl
  },
  publish: async (server, price) => {
    await fetch(`${server.url}/prices`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_TOKEN}` }, body: JSON.stringify(price) })
  }
}

export const NCHAN_TARGET: FanoutTarget = {
  name: 'nchan',
  start: async () => await startNchan(12_000),
  streamPath: async (_server, tickers) => `/sub/${tickers.join('/')}`,
  publish: async (server, price) => {
    await fetch(`${server.url}/pub/${price.ticker}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(price) })
  }
}

/** Deterministic choice of K tickers per stream (no Math.random: runs are comparable). */
export function tickersOf (index: number, options: FanoutOptions): string[] {
  const chosen = new Set<string>()
  let seed = index * 2654435761 % 4294967296
  while (chosen.size < options.tickersPerStream) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    chosen.add(`T${String(seed % options.universe).padStart(2, '0')}`)
  }
  return [...chosen]
}

/** R prices/s over the U tickers in turn, spread evenly; `ts` is the publication time. */
export function startPublisher (target: FanoutTarget, server: Server, options: Pick<FanoutOptions, 'rate' | 'universe'>): NodeJS.Timeout {
  let sequence = 0
  return setInterval(() => {
    const ticker = `T${String(sequence++ % options.universe).padStart(2, '0')}`
    target.publish(server, { ticker, price: 100 + (sequence % 1000) / 100, ts: Date.now() }).catch(() => {})
  }, 1000 / options.rate)
}

export async function runFanout (target: FanoutTarget, options: FanoutOptions): Promise<FanoutResult> {
  const server = await target.start()
  const url = new URL(server.url)
  const pool = new SseClientPool(url.hostname, Number(url.port), Math.max(1, Math.floor(options.streams / 1000)))
  let publisher: NodeJS.Timeout | undefined
  try {
    const rssBefore = sampleProcesses(server.pids()).rssBytes
    const batch = 200
    for (let start = 0; start < options.streams; start += batch) {
      const indexes = Array.from({ length: Math.min(batch, options.streams - start) }, (_, i) => start + i)
      await Promise.all(indexes.map(async (index) => {
        const streamPath = await target.streamPath(server, tickersOf(index, options), index)
        await pool.open(streamPath)
      }))
    }
    publisher = startPublisher(target, server, options)
    await delay(options.warmupSeconds * 1000)

    pool.startMeasuring()
    const cpuStart = sampleProcesses(server.pids())
    const startedAt = Date.now()
    const timeline: FanoutResult['timeline'] = []
    let deliveredBefore = 0
    let samplesBefore = 0
    // RSS moves with the V8 heap's collection cycle; the lowest reading of the window is the
    // settled figure (the same rule for nchan, whose RSS hardly moves).
    let settledRss = Number.POSITIVE_INFINITY
    for (let second = 1; second <= options.measureSeconds; second++) {
      await delay(startedAt + second * 1000 - Date.now())
      settledRss = Math.min(settledRss, sampleProcesses(server.pids()).rssBytes)
      const window = pool.stats.staleness.slice(samplesBefore).sort((a, b) => a - b)
      timeline.push({ at: second, deliveredPerSecond: pool.stats.delivered - deliveredBefore, p99: percentile(window, 99) })
      deliveredBefore = pool.stats.delivered
      samplesBefore = pool.stats.staleness.length
    }
    pool.stopMeasuring()
    const seconds = (Date.now() - startedAt) / 1000
    const end = sampleProcesses(server.pids())
    const staleness = [...pool.stats.staleness].sort((a, b) => a - b)
    return {
      target: target.name,
      streams: options.streams,
      opened: pool.stats.opened,
      failedOpens: pool.stats.failedOpens,
      earlyEnds: pool.stats.earlyEnds,
      deliveredPerSecond: pool.stats.delivered / seconds,
      staleness: { p50: percentile(staleness, 50), p99: percentile(staleness, 99), p999: percentile(staleness, 99.9), max: staleness.at(-1) ?? Number.NaN },
      cpuMicrosPerPrice: (end.cpuMicros - cpuStart.cpuMicros) / Math.max(1, pool.stats.delivered),
      kernelCpuMicrosPerPrice: (end.kernelCpuMicros - cpuStart.kernelCpuMicros) / Math.max(1, pool.stats.delivered),
      cpuPercent: ((end.cpuMicros - cpuStart.cpuMicros) / 1e6 / seconds) * 100,
      rssPerStreamBytes: (settledRss - rssBefore) / options.streams,
      rssBytes: settledRss,
      timeline
    }
  } finally {
    if (publisher !== undefined) clearInterval(publisher)
    pool.closeAll()
    await server.stop()
  }
}

function summary (results: FanoutResult[], options: FanoutOptions, command: string): string {
  const rows = results.map((r) => [r.target, r.opened, r.failedOpens, r.earlyEnds, r.deliveredPerSecond, r.staleness.p50, r.staleness.p99, r.staleness.p999, r.cpuMicrosPerPrice, r.kernelCpuMicrosPerPrice, r.cpuPercent, r.rssPerStreamBytes / 1024])
  const [tick, peer] = [results.find((r) => r.target === 'tickstream'), results.find((r) => r.target === 'nchan')]
  const ratios = tick !== undefined && peer !== undefined
    ? `\n\nRatios (tickstream / nchan): CPU per delivered price ${(tick.cpuMicrosPerPrice / peer.cpuMicrosPerPrice).toFixed(2)}x, RSS per stream ${(tick.rssPerStreamBytes / peer.rssPerStreamBytes).toFixed(2)}x, p99 staleness ${(tick.staleness.p99 / peer.staleness.p99).toFixed(2)}x\n`
    : '\n'
  return `# Fan-out: ${options.streams} streams, ${options.tickersPerStream} of ${options.universe} tickers each, ${options.rate} prices/s\n\n\`${command}\`\n\n` +
    markdownTable(['target', 'opened', 'failed opens', 'early ends', 'delivered/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'CPU µs/price', 'of which kernel', 'CPU %', 'RSS KiB/stream'], rows) + ratios
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const options: FanoutOptions = {
    streams: Number(args.get('streams') ?? 5000),
    tickersPerStream: Number(args.get('tickers-per-stream') ?? 5),
    universe: Number(args.get('universe') ?? 50),
    rate: Number(args.get('rate') ?? 50),
    warmupSeconds: Number(args.get('warmup') ?? 5),
    measureSeconds: Number(args.get('seconds') ?? 20)
  }
  const names = (args.get('targets') ?? 'tickstream,nchan').split(',')
  const targets = [TICKSTREAM_TARGET, NCHAN_TARGET].filter((target) => names.includes(target.name))
  if (names.includes('nchan')) ensureNchanInstalled()
  const results: FanoutResult[] = []
  for (const target of targets) results.push(await runFanout(target, options))
  const command = `npm run load:fanout -- --streams ${options.streams} --tickers-per-stream ${options.tickersPerStream} --universe ${options.universe} --rate ${options.rate} --warmup ${options.warmupSeconds} --seconds ${options.measureSeconds}`
  const charts: Chart[] = [
    { title: 'p99 staleness per second', yLabel: 'ms', series: results.map((r) => ({ name: r.target, points: r.timeline.map((p) => [p.at, p.p99] as [number, number]) })) },
    { title: 'delivered prices per second', yLabel: 'prices/s', series: results.map((r) => ({ name: r.target, points: r.timeline.map((p) => [p.at, p.deliveredPerSecond] as [number, number]) })) },
    { title: 'open streams', yLabel: 'streams', series: results.map((r) => ({ name: r.target, points: r.timeline.map((p) => [p.at, r.opened - r.earlyEnds] as [number, number]) })) }
  ]
  const text = summary(results, options, command)
  const files = writeReport('fanout', { options, results }, text, charts)
  process.stdout.write(`${text}\nwritten: ${files.json}, ${files.markdown}, ${files.svg}\n`)
}

runAsScript(import.meta.filename, main)
