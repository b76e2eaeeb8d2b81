import autocannon from 'autocannon'
import { delay, percentile, sampleProcesses, startBaselineServer, startBreakdownServer, startTickstream, type Server } from './lib/process.js'
import { AnswerLog } from './lib/answer-log.js'
import { markdownTable, parseArgs, runAsScript, writeReport, type Chart } from './lib/report.js'

/**
 * `npm run load:registration`: the seed system's staged profile against `POST /sessions`,
 * for tickstream and, in the same run, a bare Fastify route with the same schema and
 * response shape (load/baseline-server.ts).
 *
 *   --scale F         compress time (default 0.1: 34 s per target and round)
 *   --rounds N        run the profile N times per target, the order of targets reversing every
 *                     round (default 2: A B C, then C B A)
 *   --profile spike   1000 -> 1500 connections instead of 100 -> 150
 *   --shed-ms N       tickstream's SHED_EVENT_LOOP_DELAY_MS (default: the service default; 0 = off)
 *   --users N         distinct users (default: as many as the profile's peak connections, one per
 *                     virtual user as in the seed's load test; each registration beyond a
 *                     user's third evicts its oldest, so about 3 x N sessions stay live)
 *   --warmup S        before the first round, S seconds of registrations (not counted) against
 *                     each target, so that no target's first round measures its JIT warming up
 *                     (default 5; 0 = start cold, as until session 9)
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

/** Ramps become steps of about two (scaled) seconds each; `layersOf` turns them into connections. */
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
  /**
   * The server's CPU time (user + system, from /proc) over its runs of the profile, per 2xx.
   * Throughput depends on how the two cores are shared with the generator; this is what the
   * server itself spent on each registration. With load shedding on, the work of the 503s it
   * answered is in it too (`--shed-ms 0` leaves none).
   */
  cpuMicrosPerRequest: number
  /**
   * 2xx per second in each round, in the order the rounds ran. The targets' rounds alternate
   * (A B C, C B A, ...), so a target's round k and another's ran minutes apart at most: how far
   * these move from round to round shows how much the machine moved during the run.
   */
  roundThroughputs: number[]
  steps: Array<{ at: number, connections: number, p99: number, throughput: number }>
}

/** A group of connections opened together and kept open (keep-alive) until the profile drops them. */
export interface Layer { connections: number, startsAt: number, seconds: number }

/**
 * The steps as layers of connections, like the seed's virtual users: a step that raises the
 * count opens a layer of new connections, one that lowers it closes the newest ones, and
 * every other connection carries on, on the same socket.
 *
 * (Until session 5 each step ran its own autocannon with all-new connections. On Node 20 a busy
 * server accepts one connection per event-loop turn, so most of each step's 1500 fresh
 * connections never got past the kernel's accept queue before the step ended: the requests
 * they had sent were neither answered nor counted, and the "1500 connections" were in fact 500
 * to 800. See BENCHMARKS.md, "The accept queue".)
 */
export function layersOf (steps: Step[]): Layer[] {
  const layers: Layer[] = []
  const open: Array<{ connections: number, startsAt: number }> = []
  let openCount = 0
  let endsAt = 0
  for (const step of steps) {
    if (step.connections > openCount) {
      open.push({ connections: step.connections - openCount, startsAt: step.startsAt })
      openCount = step.connections
    }
    while (openCount > step.connections) {
      const newest = open[open.length - 1]
      /* c8 ignore next -- openCount > 0 means a layer is open */
      if (newest === undefined) break
      const closing = Math.min(newest.connections, openCount - step.connections)
      layers.push({ connections: closing, startsAt: newest.startsAt, seconds: step.startsAt - newest.startsAt })
      newest.connections -= closing
      openCount -= closing
      if (newest.connections === 0) open.pop()
    }
    endsAt = step.startsAt + step.seconds
  }
  for (const layer of open) layers.push({ connections: layer.connections, startsAt: layer.startsAt, seconds: endsAt - layer.startsAt })
  return layers.filter((layer) => layer.seconds > 0).sort((a, b) => a.startsAt - b.startsAt)
}

/** The body every load run registers with: one user, three common tickers. */
export function registrationBody (userId: string): string {
  return JSON.stringify({ userId, tickers: ['AAPL', 'MSFT', 'NVDA'] })
}

/** `connections` sending registrations back to back for `seconds`; `done` settles with autocannon's totals. */
function sendRegistrations (url: string, connections: number, seconds: number, nextUser: () => string): { instance: autocannon.Instance, done: Promise<autocannon.Result> } {
  let finish: (err: Error | null, result: autocannon.Result) => void = () => {}
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (err, result) => { if (err !== null) reject(err); else resolve(result) }
  })
  const instance = autocannon({
    url,
    method: 'POST',
    connections,
    duration: seconds,
    // autocannon checks for the end of its duration on each sample tick: at the default 1 s a
    // layer overran by up to a second, into the next step's count.
    sampleInt: 100,
    timeout: 10,
    headers: { 'content-type': 'application/json' },
    requests: [{
      setupRequest: (request) => ({ ...request, body: registrationBody(nextUser()) })
    }]
  }, (err, result) => finish(err ?? null, result))
  return { instance, done }
}

/** One layer: its connections send registrations back to back until the layer ends. */
async function runLayer (url: string, layer: Layer, answers: AnswerLog, result: TargetResult, startedAt: number, nextUser: () => string): Promise<void> {
  const { instance, done } = sendRegistrations(url, layer.connections, layer.seconds, nextUser)
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (status < 200 || status >= 300) return
    answers.push((performance.now() - startedAt) / 1000, responseTime)
  })
  const layerResult = await done
  result.non2xx += layerResult.non2xx
  result.errors += layerResult.errors
  result.timeouts += layerResult.timeouts
}

function emptyResult (target: string): TargetResult {
  return { target, requests: 0, seconds: 0, throughput: 0, p50: 0, p99: 0, max: 0, non2xx: 0, errors: 0, timeouts: 0, cpuMicrosPerRequest: 0, roundThroughputs: [], steps: [] }
}

/** Connections of the warm-up: enough to run every path hot, few enough to open at once. */
const WARMUP_CONNECTIONS = 100

/**
 * `seconds` of registrations against one target, counted nowhere. Every server starts as a
 * fresh process, and V8 compiles a request's hot paths in its first seconds: the more code a
 * request runs (the whole app against the bare route), the longer that takes, and round 1
 * should not compare a server still warming up with one that is done. Rejects when not one
 * registration succeeded: a warm-up against a wrong path or a refusing server is no warm-up.
 */
async function warmUp (url: string, seconds: number, nextUser: () => string): Promise<void> {
  if (seconds <= 0) return
  const result = await sendRegistrations(url, WARMUP_CONNECTIONS, seconds, nextUser).done
  if (result['2xx'] === 0) throw new Error(`warm-up of ${url}: no registration succeeded (${result.non2xx} non-2xx, ${result.errors} errors)`)
}

/** The whole profile against one target, once: every layer starts on time, all run side by side. */
async function runProfileOnce (url: string, steps: Step[], nextUser: () => string, result: TargetResult, answers: AnswerLog): Promise<void> {
  const startedAt = performance.now()
  await Promise.all(layersOf(steps).map(async (layer) => {
    await delay(layer.startsAt * 1000 - (performance.now() - startedAt))
    await runLayer(url, layer, answers, result, startedAt, nextUser)
  }))
}

/** The step that `at` (seconds into the profile) falls in, by binary search; -1 outside the profile. */
export function stepIndexAt (steps: readonly Step[], at: number): number {
  let low = 0
  let high = steps.length - 1
  while (low <= high) {
    const middle = (low + high) >> 1
    const step = steps[middle]
    /* c8 ignore next -- middle is always within bounds */
    if (step === undefined) return -1
    if (at < step.startsAt) high = middle - 1
    else if (at >= step.startsAt + step.seconds) low = middle + 1
    else return middle
  }
  return -1
}

/** Totals, percentiles, per-step figures over every round of one target, and each round's throughput. */
function summarize (result: TargetResult, answers: AnswerLog, steps: Step[], answersPerRound: number[], cpuMicros: number): TargetResult {
  const lastStep = steps[steps.length - 1]
  const profileSeconds = lastStep === undefined ? 0 : lastStep.startsAt + lastStep.seconds
  const rounds = answersPerRound.length
  result.seconds = profileSeconds * rounds
  result.roundThroughputs = answersPerRound.map((count) => count / profileSeconds)
  const latencies = answers.sortedLatencies()
  result.requests = latencies.length
  result.throughput = result.requests / result.seconds
  result.p50 = percentile(latencies, 50)
  result.p99 = percentile(latencies, 99)
  result.max = latencies.at(-1) ?? 0
  result.cpuMicrosPerRequest = cpuMicros / Math.max(1, result.requests)
  // Each answer into its step's bucket in one pass (steps are in time order, back to back).
  const latenciesByStep: number[][] = steps.map(() => [])
  for (let answer = 0; answer < answers.length; answer++) {
    const index = stepIndexAt(steps, answers.timeAt(answer))
    if (index !== -1) latenciesByStep[index]?.push(answers.latencyAt(answer))
  }
  steps.forEach((step, index) => {
    const inStep = (latenciesByStep[index] ?? []).sort((a, b) => a - b)
    result.steps.push({ at: step.startsAt, connections: step.connections, p99: percentile(inStep, 99), throughput: inStep.length / (step.seconds * rounds) })
  })
  return result
}

/**
 * Runs the profile against each target in turn, the whole profile each time, with its
 * connections held open throughout; only one target is under load at any moment. With
 * `rounds` > 1 the order reverses every round (A B C, C B A, ...), so a machine that drifts
 * during the run favours no target; the results add up every round.
 */
export async function runProfiles (targets: Array<{ name: string, server: Server, path?: string }>, steps: Step[], users?: number, rounds = 1, warmupSeconds = 0): Promise<TargetResult[]> {
  // As many users as the profile's peak connections unless told otherwise: each registers again and again.
  const userCount = users ?? Math.max(...steps.map((step) => step.connections))
  const runs = targets.map((target) => {
    let user = 0
    return {
      target,
      url: `${target.server.url}${target.path ?? '/sessions'}`,
      nextUser: (): string => `user-${user++ % userCount}`,
      result: emptyResult(target.name),
      answers: new AnswerLog(),
      answersPerRound: [] as number[],
      cpuMicros: 0
    }
  })
  for (const run of runs) await warmUp(run.url, warmupSeconds, run.nextUser)
  for (let round = 0; round < rounds; round++) {
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) {
      const cpuBefore = sampleProcesses(run.target.server.pids()).cpuMicros
      const answersBefore = run.answers.length
      await runProfileOnce(run.url, steps, run.nextUser, run.result, run.answers)
      run.cpuMicros += sampleProcesses(run.target.server.pids()).cpuMicros - cpuBefore
      run.answersPerRound.push(run.answers.length - answersBefore)
    }
  }
  return runs.map((run) => summarize(run.result, run.answers, steps, run.answersPerRound, run.cpuMicros))
}

const DEFAULT_WARMUP_SECONDS = 5

export interface RegistrationRun {
  profile: string
  scale: number
  /** Seconds of uncounted registrations against each target before the first round. */
  warmupSeconds: number
  /** Distinct users: `--users`, or as many as the profile's peak connections. */
  users: number
  /** Times the profile ran against each target, in alternating order. */
  rounds: number
  baseline: TargetResult
  tickstream: TargetResult
  /** With --breakdown: tickstream's plugins and hooks around the baseline's handler. */
  pluginsOnly?: TargetResult
  /**
   * tickstream / baseline; `cpuPerRequest` is the servers' own CPU per 2xx (above 1: tickstream
   * costs more); `throughputPerRound` the throughput ratio of each round on its own.
   */
  ratios: {
    throughput: number
    p99: number
    cpuPerRequest: number
    throughputPerRound: number[]
    /** The same two ratios over the steps at the peak connection count only (see `atPeak`). */
    atPeak: { connections: number, throughput: number, p99: number }
  }
}

export async function runRegistration (profile: 'smoke' | 'spike', scale: number, shedMs?: string, breakdown = false, users?: number, rounds = 2, warmupSeconds = DEFAULT_WARMUP_SECONDS): Promise<RegistrationRun> {
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
    ], steps, users, rounds, warmupSeconds)
  } finally {
    await Promise.all([baselineServer.stop(), tickstreamServer.stop(), breakdownServer?.stop()])
  }
  const [baseline, tickstream, pluginsOnly] = results
  if (baseline === undefined || tickstream === undefined) throw new Error('missing results')
  return {
    profile,
    scale,
    warmupSeconds,
    users: users ?? spike,
    rounds,
    baseline,
    tickstream,
    ...(pluginsOnly === undefined ? {} : { pluginsOnly }),
    ratios: registrationRatios(tickstream, baseline)
  }
}

/** tickstream against the baseline, as `RegistrationRun.ratios` gives them. */
export function registrationRatios (tickstream: TargetResult, baseline: TargetResult): RegistrationRun['ratios'] {
  const tickstreamAtPeak = atPeak(tickstream)
  const baselineAtPeak = atPeak(baseline)
  return {
    throughput: tickstream.throughput / baseline.throughput,
    p99: tickstream.p99 / baseline.p99,
    cpuPerRequest: tickstream.cpuMicrosPerRequest / baseline.cpuMicrosPerRequest,
    throughputPerRound: roundRatios(tickstream, baseline),
    atPeak: {
      connections: baselineAtPeak.connections,
      throughput: tickstreamAtPeak.throughput / baselineAtPeak.throughput,
      p99: tickstreamAtPeak.p99 / baselineAtPeak.p99
    }
  }
}

/**
 * A target at the profile's peak connection count (1500 in the spike profile: its one-minute
 * hold), which is where the issue's target is set ("registration at 1500 connections"); the
 * whole-profile figures also count the ramp from a few connections up. It comes from one
 * step per round, a sixth of the profile's time. With several steps at the peak: their mean
 * throughput (steps are equally long) and their highest p99.
 */
export function atPeak (result: TargetResult): { connections: number, throughput: number, p99: number } {
  const connections = Math.max(0, ...result.steps.map((step) => step.connections))
  const peakSteps = result.steps.filter((step) => step.connections === connections)
  if (peakSteps.length === 0) return { connections, throughput: Number.NaN, p99: Number.NaN }
  return {
    connections,
    throughput: peakSteps.reduce((sum, step) => sum + step.throughput, 0) / peakSteps.length,
    p99: Math.max(...peakSteps.map((step) => step.p99))
  }
}

/** `target`'s throughput over `reference`'s, round by round. */
export function roundRatios (target: TargetResult, reference: TargetResult): number[] {
  return target.roundThroughputs.map((throughput, round) => throughput / (reference.roundThroughputs[round] ?? Number.NaN))
}

function formatRatios (ratios: readonly number[]): string {
  return ratios.map((ratio) => `${ratio.toFixed(2)}x`).join(', ')
}

/** The run's markdown summary: the table of targets, the ratios, round by round, and the split. */
export function registrationSummary (run: RegistrationRun, command: string): string {
  const row = (r: TargetResult): Array<string | number> => [r.target, r.requests, r.throughput, r.p50, r.p99, r.max, r.non2xx, r.errors, r.timeouts, r.cpuMicrosPerRequest]
  // requests, req/s and latencies count 2xx answers only; non-2xx are listed apart.
  const rows = [row(run.baseline), row(run.tickstream), ...(run.pluginsOnly === undefined ? [] : [row(run.pluginsOnly)])]
  const breakdown = run.pluginsOnly === undefined
    ? ''
    : `Breakdown of the throughput gap: tickstream's plugins and hooks around the baseline's handler ${(run.pluginsOnly.throughput / run.baseline.throughput).toFixed(2)}x the baseline; ` +
      `the session work on top of them ${(run.tickstream.throughput / run.pluginsOnly.throughput).toFixed(2)}x that.\n`
  return `# Registration load (${run.profile}, scale ${run.scale}, users: ${run.users}, rounds: ${run.rounds}, warm-up: ${run.warmupSeconds} s per target)\n\n\`${command}\`\n\n` +
    markdownTable(['target', '2xx', '2xx/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'timeouts', 'server CPU µs/2xx'], rows) +
    `\n\nRatios (tickstream / baseline): throughput ${run.ratios.throughput.toFixed(2)}x, p99 ${run.ratios.p99.toFixed(2)}x, ` +
    `server CPU per registration ${run.ratios.cpuPerRequest.toFixed(2)}x (the throughput the servers' own CPU would allow: ${(1 / run.ratios.cpuPerRequest).toFixed(2)}x)\n` +
    `At the peak (${run.ratios.atPeak.connections} connections): throughput ${run.ratios.atPeak.throughput.toFixed(2)}x, p99 ${run.ratios.atPeak.p99.toFixed(2)}x\n` +
    `Throughput ratio round by round: ${formatRatios(run.ratios.throughputPerRound)}` +
    (run.pluginsOnly === undefined ? '' : `; plugins around the bare handler / baseline: ${formatRatios(roundRatios(run.pluginsOnly, run.baseline))}`) +
    '\n' + breakdown
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const profile = args.get('profile') === 'spike' ? 'spike' : 'smoke'
  const scale = Number(args.get('scale') ?? '0.1')
  if (!(scale > 0)) throw new Error(`--scale must be a positive number, got ${args.get('scale')}`)
  const shedMs = args.get('shed-ms')
  const breakdown = args.has('breakdown')
  const usersArg = args.get('users')
  const users = usersArg === undefined ? undefined : Number(usersArg)
  if (users !== undefined && !(Number.isInteger(users) && users >= 1)) throw new Error(`--users must be a positive integer, got ${usersArg}`)
  const rounds = Number(args.get('rounds') ?? '2')
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--rounds must be a positive integer, got ${args.get('rounds')}`)
  const warmupSeconds = Number(args.get('warmup') ?? String(DEFAULT_WARMUP_SECONDS))
  if (!(warmupSeconds >= 0)) throw new Error(`--warmup must be a number of seconds >= 0, got ${args.get('warmup')}`)
  const run = await runRegistration(profile, scale, shedMs, breakdown, users, rounds, warmupSeconds)
  const command = `npm run load:registration -- --profile ${profile} --scale ${scale}${shedMs === undefined ? '' : ` --shed-ms ${shedMs}`}${users === undefined ? '' : ` --users ${users}`}${rounds === 2 ? '' : ` --rounds ${rounds}`}${warmupSeconds === DEFAULT_WARMUP_SECONDS ? '' : ` --warmup ${warmupSeconds}`}${breakdown ? ' --breakdown' : ''}`
  const charts: Chart[] = [
    { title: 'p99 latency per step', yLabel: 'ms', series: [run.baseline, run.tickstream, ...(run.pluginsOnly === undefined ? [] : [run.pluginsOnly])].map((r) => ({ name: r.target, points: r.steps.map((s) => [s.at, s.p99] as [number, number]) })) },
    { title: 'connections', yLabel: 'connections', series: [{ name: 'connections', points: run.tickstream.steps.map((s) => [s.at, s.connections] as [number, number]) }] }
  ]
  const markdown = registrationSummary(run, command)
  const files = writeReport(`registration-${profile}`, run, markdown, charts)
  process.stdout.write(`${markdown}\nwritten: ${files.json}, ${files.markdown}, ${files.svg}\n`)
}

runAsScript(import.meta.filename, main)
