import autocannon from 'autocannon'
import { percentile, startBaselineServer, startBreakdownServer, startTickstream, type Server } from './lib/process.js'
import { markdownTable, parseArgs, runAsScript, writeReport, type Chart } from './lib/report.js'

/**
 * `npm run load:registration`: the seed system's staged profile against `POST /sessions`,
 * for tickstream and, in the same run, a bare Fastify route with the same schema and
 * response shape (load/baseline-server.ts).
 *
 *   --scale F         compress time (default 0.1: a smoke run of about a minute per target)
 *   --profile spike   1000 -> 1500 connections instead of 100 -> 150
 *   --shed-ms N       tickstream's SHED_EVENT_LOOP_DELAY_MS (default: the service default; 0 = off)
 *   --users N         distinct users (default: as many as the step has connections, one per
 *                     virtual user as in the seed's load test; each registration beyond a
 *                     user's third evicts its oldest, so about 3 x N sessions stay live)
 *   --breakdown       a third target: the whole tickstream app with a route that has the same
 *                     hooks as POST /sessions but the baseline's handler (load/breakdown-server.ts),
 *                     to split the gap into plugin cost and session-work cost
 */

interface Stage { seconds: number, from: number, to: number }

/** 0 -> 100 over 3 min, hold 1 min, spike to 150 in 30 s, hold 1 min, down to 0 in 10 s. */
export function stagedProfile (peak: number, spike: number): Stage[] {
  return [
    { seconds: 180, from: 0, to: peak },
    { seconds: 60, from: peak, to: peak },
    { seconds: 30, from: peak, to: spike },
    { seconds: 60, from: spike, to: spike },
    { seconds: 10, from: spike, to: 0 }
  ]
}

interface Step { connections: number, seconds: number, startsAt: number }

/** Ramps become steps of about two (scaled) seconds each; autocannon runs each step. */
export function stepsOf (stages: Stage[], scale: number): Step[] {
  const steps: Step[] = []
  let startsAt = 0
  for (const stage of stages) {
    const seconds = stage.seconds * scale
    const count = stage.from === stage.to ? 1 : Math.max(1, Math.round(seconds / 2))
    for (let i = 0; i < count; i++) {
      const fraction = (i + 0.5) / count
      const connections = Math.max(1, Math.round(stage.from + (stage.to - stage.from) * fraction))
      steps.push({ connections, seconds: seconds / count, startsAt })
      startsAt += seconds / count
    }
  }
  return steps
}

export interface TargetResult {
  target: string
  /** Requests answered 201; throughput and latency count only these (a fast 503 is no work done). */
  requests: number
  seconds: number
  throughput: number
  p50: number
  p99: number
  max: number
  non2xx: number
  errors: number
  timeouts: number
  steps: Array<{ at: number, connections: number, p99: number, throughput: number }>
}

async function runStep (url: string, step: Step, acc: Accumulator, nextUser: () => string): Promise<autocannon.Result> {
  let finish: (err: Error | null, result: autocannon.Result) => void = () => {}
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (err, result) => { if (err !== null) reject(err); else resolve(result) }
  })
  const instance = autocannon({
    url,
    method: 'POST',
    connections: step.connections,
    duration: Math.max(0.5, step.seconds),
    timeout: 10,
    headers: { 'content-type': 'application/json' },
    requests: [{
      setupRequest: (request) => ({ ...request, body: JSON.stringify({ userId: nextUser(), tickers: ['AAPL', 'MSFT', 'NVDA'] }) })
    }]
  }, (err, result) => finish(err ?? null, result))
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (status < 200 || status >= 300) return
    acc.latencies.push(responseTime)
    acc.result.requests++
  })
  return await done
}

interface Accumulator { result: TargetResult, latencies: number[] }

function emptyResult (target: string): Accumulator {
  return { result: { target, requests: 0, seconds: 0, throughput: 0, p50: 0, p99: 0, max: 0, non2xx: 0, errors: 0, timeouts: 0, steps: [] }, latencies: [] }
}

function addStep (acc: Accumulator, step: Step, stepResult: autocannon.Result): void {
  const result = acc.result
  result.seconds += stepResult.duration
  result.non2xx += stepResult.non2xx
  result.errors += stepResult.errors
  result.timeouts += stepResult.timeouts
  result.steps.push({ at: step.startsAt, connections: step.connections, p99: stepResult.latency.p99, throughput: stepResult.requests.average })
}

function finish (acc: Accumulator): TargetResult {
  const { result, latencies } = acc
  latencies.sort((a, b) => a - b)
  result.throughput = result.requests / result.seconds
  result.p50 = percentile(latencies, 50)
  result.p99 = percentile(latencies, 99)
  result.max = latencies.at(-1) ?? 0
  return result
}

/**
 * Runs the profile against both servers, step by step, alternating: baseline step k, then
 * tickstream step k. On a shared, noisy machine both then see the same conditions, which a
 * whole profile against one and then the other would not guarantee.
 */
export async function runProfiles (targets: Array<{ name: string, server: Server, path?: string }>, steps: Step[], users?: number): Promise<TargetResult[]> {
  let user = 0
  const accumulators = targets.map((target) => emptyResult(target.name))
  for (const step of steps) {
    const nextUser = (): string => `user-${user++ % (users ?? step.connections)}`
    for (const [index, target] of targets.entries()) {
      const acc = accumulators[index]
      if (acc === undefined) continue
      addStep(acc, step, await runStep(`${target.server.url}${target.path ?? '/sessions'}`, step, acc, nextUser))
    }
  }
  return accumulators.map(finish)
}

export interface RegistrationRun {
  profile: string
  scale: number
  /** Distinct users; `as many as connections` when each step has as many users as connections. */
  users: number | 'as many as connections'
  baseline: TargetResult
  tickstream: TargetResult
  /** With --breakdown: tickstream's plugins and hooks around the baseline's handler. */
  pluginsOnly?: TargetResult
  ratios: { throughput: number, p99: number }
}

export async function runRegistration (profile: 'smoke' | 'spike', scale: number, shedMs?: string, breakdown = false, users?: number): Promise<RegistrationRun> {
  const [peak, spike] = profile === 'spike' ? [1000, 1500] : [100, 150]
  const steps = stepsOf(stagedProfile(peak, spike), scale)
  // Both servers run in their own processes; only one is under load at any moment.
  const baselineServer = await startBaselineServer()
  // The generator is one IP: the per-IP rate limit would measure itself, not registration.
  const tickstreamEnv = { FEED: 'none', RATE_LIMIT_MAX: '0', ...(shedMs === undefined ? {} : { SHED_EVENT_LOOP_DELAY_MS: shedMs }) }
  const tickstreamServer = await startTickstream(tickstreamEnv)
  const breakdownServer = breakdown ? await startBreakdownServer(tickstreamEnv) : undefined
  let results: TargetResult[]
  try {
    results = await runProfiles([
      { name: 'bare Fastify route', server: baselineServer },
      { name: 'tickstream', server: tickstreamServer },
      ...(breakdownServer === undefined ? [] : [{ name: 'tickstream plugins, bare handler', server: breakdownServer, path: '/sessions-bare' }])
    ], steps, users)
  } finally {
    await Promise.all([baselineServer.stop(), tickstreamServer.stop(), breakdownServer?.stop()])
  }
  const [baseline, tickstream, pluginsOnly] = results
  if (baseline === undefined || tickstream === undefined) throw new Error('missing results')
  return {
    profile,
    scale,
    users: users ?? 'as many as connections',
    baseline,
    tickstream,
    ...(pluginsOnly === undefined ? {} : { pluginsOnly }),
    ratios: { throughput: tickstream.throughput / baseline.throughput, p99: tickstream.p99 / baseline.p99 }
  }
}

function summary (run: RegistrationRun, command: string): string {
  const row = (r: TargetResult): Array<string | number> => [r.target, r.requests, r.throughput, r.p50, r.p99, r.max, r.non2xx, r.errors, r.timeouts]
  // requests, req/s and latencies count 2xx answers only; non-2xx are listed apart.
  const rows = [row(run.baseline), row(run.tickstream), ...(run.pluginsOnly === undefined ? [] : [row(run.pluginsOnly)])]
  const breakdown = run.pluginsOnly === undefined
    ? ''
    : `Breakdown of the throughput gap: tickstream's plugins and hooks around the baseline's handler ${(run.pluginsOnly.throughput / run.baseline.throughput).toFixed(2)}x the baseline; ` +
      `the session work on top of them ${(run.tickstream.throughput / run.pluginsOnly.throughput).toFixed(2)}x that.\n`
  return `# Registration load (${run.profile}, scale ${run.scale}, users: ${run.users})\n\n\`${command}\`\n\n` +
    markdownTable(['target', '2xx', '2xx/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'timeouts'], rows) +
    `\n\nRatios (tickstream / baseline): throughput ${run.ratios.throughput.toFixed(2)}x, p99 ${run.ratios.p99.toFixed(2)}x\n` + breakdown
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const profile = args.get('profile') === 'spike' ? 'spike' : 'smoke'
  const scale = Number(args.get('scale') ?? '0.1')
  const shedMs = args.get('shed-ms')
  const breakdown = args.has('breakdown')
  const usersArg = args.get('users')
  const users = usersArg === undefined ? undefined : Number(usersArg)
  if (users !== undefined && !(Number.isInteger(users) && users >= 1)) throw new Error(`--users must be a positive integer, got ${usersArg}`)
  const run = await runRegistration(profile, scale, shedMs, breakdown, users)
  const command = `npm run load:registration -- --profile ${profile} --scale ${scale}${shedMs === undefined ? '' : ` --shed-ms ${shedMs}`}${users === undefined ? '' : ` --users ${users}`}${breakdown ? ' --breakdown' : ''}`
  const charts: Chart[] = [
    { title: 'p99 latency per step', yLabel: 'ms', series: [run.baseline, run.tickstream, ...(run.pluginsOnly === undefined ? [] : [run.pluginsOnly])].map((r) => ({ name: r.target, points: r.steps.map((s) => [s.at, s.p99] as [number, number]) })) },
    { title: 'connections', yLabel: 'connections', series: [{ name: 'connections', points: run.tickstream.steps.map((s) => [s.at, s.connections] as [number, number]) }] }
  ]
  const files = writeReport(`registration-${profile}`, run, summary(run, command), charts)
  process.stdout.write(`${summary(run, command)}\nwritten: ${files.json}, ${files.markdown}, ${files.svg}\n`)
}

runAsScript(import.meta.filename, main)
