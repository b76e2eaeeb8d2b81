import path from 'node:path'
import autocannon from 'autocannon'
import { REPO_ROOT, startNodeServer } from './lib/process.js'
import { registrationBody } from './registration.js'
import { markdownTable, npmRunCommand, parseArgs, runAsScript, writeReport } from './lib/report.js'

/**
 * `npm run load:gc-promotion`: how much of each registration the young-generation GC copies
 * into the old generation, for the registration run's bare route and for the whole tickstream
 * app around the same handler (its logger, hooks and plugins), each with V8's allocation-site
 * pretenuring on (V8's default, `KEEP_V8_PRETENURING=1`) and off (what src/gc-tuning.ts sets,
 * and what the load servers set otherwise). See BENCHMARKS.md, "Pretenuring".
 *
 * Each server runs in its own process with `--trace-gc-nvp`; after a warm-up, `--connections`
 * connections register for `--seconds` (or `--requests` registrations in all), and the young
 * GCs (scavenges) of that window are summed: their count, their pause time, the bytes they
 * promoted. Throughput is shown but is the noisy figure; bytes promoted per request are not.
 *
 *   --connections N (1500)  --seconds S (6)  --requests N (instead of --seconds)  --warmup S (3)
 */

export interface GcPromotionTarget {
  name: string
  /** Built server, relative to the repository root. */
  script: string
  path: string
}

export const GC_PROMOTION_TARGETS: GcPromotionTarget[] = [
  { name: 'bare Fastify route', script: 'dist/load/baseline-server.js', path: '/sessions' },
  { name: 'tickstream plugins, bare handler', script: 'dist/load/breakdown-server.js', path: '/sessions-bare' }
]

export interface GcPromotionOptions {
  connections: number
  seconds: number
  /**
   * A window of this many registrations instead of `seconds`: the CI smoke's, so that a slow
   * machine still allocates enough for young GCs to happen in it.
   */
  requests?: number
  warmupSeconds: number
}

export interface GcPromotionResult {
  target: string
  pretenuring: boolean
  requests: number
  requestsPerSecond: number
  scavenges: number
  scavengeMillisPer1000Requests: number
  promotedBytesPerRequest: number
}

export async function runGcPromotion (options: GcPromotionOptions, targets: GcPromotionTarget[] = GC_PROMOTION_TARGETS): Promise<GcPromotionResult[]> {
  const results: GcPromotionResult[] = []
  for (const target of targets) {
    for (const pretenuring of [true, false]) results.push(await measure(target, pretenuring, options))
  }
  return results
}

async function measure (target: GcPromotionTarget, pretenuring: boolean, options: GcPromotionOptions): Promise<GcPromotionResult> {
  // As the registration run starts them: rate limit and load shedding off, logs at warn.
  const env = { FEED: 'none', RATE_LIMIT_MAX: '0', SHED_EVENT_LOOP_DELAY_MS: '0', KEEP_V8_PRETENURING: pretenuring ? '1' : '0' }
  const server = await startNodeServer(path.join(REPO_ROOT, target.script), ['--trace-gc-nvp'], env, true)
  try {
    const url = `${server.url}${target.path}`
    await register(url, options.connections, { duration: options.warmupSeconds })
    const windowStart = server.stdout().length
    const result = await register(url, options.connections, options.requests === undefined ? { duration: options.seconds } : { amount: options.requests })
    const trace = server.stdout()
    const scavenges = youngGcLines(trace.slice(startOfNextLine(trace, windowStart)))
    const requests = result.requests.total
    return {
      target: target.name,
      pretenuring,
      requests,
      requestsPerSecond: result.requests.average,
      scavenges: scavenges.length,
      scavengeMillisPer1000Requests: (sum(scavenges, 'pause') / Math.max(1, requests)) * 1000,
      promotedBytesPerRequest: sum(scavenges, 'promoted') / Math.max(1, requests)
    }
  } finally {
    await server.stop()
  }
}

async function register (url: string, connections: number, window: { duration: number } | { amount: number }): Promise<autocannon.Result> {
  let user = 0
  return await autocannon({
    url,
    method: 'POST',
    connections,
    ...window,
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (request) => ({ ...request, body: registrationBody(`user-${user++ % connections}`) }) }]
  })
}

/**
 * Where the window's whole lines begin: at `offset` if a line begins there, otherwise after
 * the line that was being written at that moment (its start belongs to the warm-up).
 */
export function startOfNextLine (text: string, offset: number): number {
  if (offset === 0 || text[offset - 1] === '\n') return offset
  const newline = text.indexOf('\n', offset)
  return newline === -1 ? text.length : newline + 1
}

/** `--trace-gc-nvp` lines of young GCs (`gc=s`), as name → value. */
export function youngGcLines (trace: string): Array<Map<string, string>> {
  return trace.split('\n')
    .filter((line) => /\bgc=s\b/.test(line))
    .map((line) => new Map(line.trim().split(/\s+/).map((pair) => pair.split('=') as [string, string])))
}

function sum (lines: Array<Map<string, string>>, field: string): number {
  return lines.reduce((total, line) => total + Number(line.get(field) ?? 0), 0)
}

export function gcPromotionMarkdown (results: GcPromotionResult[], command: string): string {
  const rows = results.map((r) => [r.target, r.pretenuring ? 'on (V8 default)' : 'off', r.requestsPerSecond, r.scavenges, r.scavengeMillisPer1000Requests, r.promotedBytesPerRequest])
  return [
    '# GC promotion per registration',
    '',
    `\`${command}\``,
    '',
    markdownTable(['target', 'pretenuring', 'req/s', 'young GCs', 'young-GC ms / 1000 req', 'promoted bytes / req'], rows),
    ''
  ].join('\n')
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const options: GcPromotionOptions = {
    connections: Number(args.get('connections') ?? 1500),
    seconds: Number(args.get('seconds') ?? 6),
    ...(args.has('requests') ? { requests: Number(args.get('requests')) } : {}),
    warmupSeconds: Number(args.get('warmup') ?? 3)
  }
  const results = await runGcPromotion(options)
  const command = npmRunCommand('load:gc-promotion', process.argv.slice(2))
  const markdown = gcPromotionMarkdown(results, command)
  const written = writeReport('gc-promotion', { options, results }, markdown, [])
  process.stdout.write(`${markdown}\nwritten: ${written.json}, ${written.markdown}\n`)
}

runAsScript(import.meta.filename, main)
