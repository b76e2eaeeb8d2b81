import { closeSync, openSync, readSync } from 'node:fs'
import t from 'tap'
import { formatNumber, markdownTable, npmRunCommand, parseArgs, svgCharts } from '../../load/lib/report.js'
import { instructionsSummary } from '../../load/instructions.js'
import { sampleProcess } from '../../load/lib/process.js'
import { atPeak, layersOf, registrationRatios, registrationSummary, roundRatios, stagedProfile, stepIndexAt, stepsOf, type TargetResult } from '../../load/registration.js'

t.test('the staged profile compresses by --scale into steps that follow the ramps', async (t) => {
  const stages = stagedProfile(100, 150)
  t.same(stages.map((s) => s.seconds), [180, 60, 30, 60, 10], '3 min ramp, 1 min hold, 30 s spike, 1 min hold, 10 s drop')
  const steps = stepsOf(stages, 0.1)
  const total = steps.reduce((sum, step) => sum + step.seconds, 0)
  t.ok(Math.abs(total - 34) < 1e-9, `scale 0.1 gives 34 s in all (${total})`)
  t.equal(Math.max(...steps.map((s) => s.connections)), 150, 'peaks at the spike')
  t.ok(steps.every((step, i) => i === 0 || step.startsAt > (steps[i - 1]?.startsAt ?? 0)), 'steps are in time order')
  t.equal(Math.max(...stepsOf(stagedProfile(1000, 1500), 0.1).map((s) => s.connections)), 1500, '--profile spike peaks at 1500')
})

t.test('layers: connections opened as the profile rises stay open until it falls, newest closed first', async (t) => {
  const steps = [
    { connections: 10, seconds: 2, startsAt: 0 },
    { connections: 30, seconds: 2, startsAt: 2 },
    { connections: 30, seconds: 2, startsAt: 4 },
    { connections: 15, seconds: 2, startsAt: 6 },
    { connections: 5, seconds: 2, startsAt: 8 }
  ]
  t.same(layersOf(steps), [
    { connections: 5, startsAt: 0, seconds: 8 },
    { connections: 5, startsAt: 0, seconds: 10 },
    { connections: 15, startsAt: 2, seconds: 4 },
    { connections: 5, startsAt: 2, seconds: 6 }
  ])
  // At every step the open layers add up to the step's connections.
  for (const profile of [stagedProfile(100, 150), stagedProfile(1000, 1500)]) {
    const profileSteps = stepsOf(profile, 0.1)
    const layers = layersOf(profileSteps)
    for (const step of profileSteps) {
      const open = layers.filter((layer) => layer.startsAt <= step.startsAt && layer.startsAt + layer.seconds > step.startsAt + 1e-9)
      t.equal(open.reduce((sum, layer) => sum + layer.connections, 0), step.connections, `${step.connections} connections at ${step.startsAt.toFixed(1)} s`)
    }
  }
})

t.test('reports: markdown tables, number formatting, arguments', async (t) => {
  t.equal(markdownTable(['a', 'b'], [['x', 1.234], ['y', 1234]]), '| a | b |\n| --- | --- |\n| x | 1.23 |\n| y | 1234 |')
  t.equal(formatNumber(0.01234), '0.012')
  t.equal(formatNumber(Number.NaN), 'NaN')
  t.equal(formatNumber(0), '0', 'a count of zero is 0, not 0.0')
  t.equal(formatNumber(42), '42')
  t.equal(formatNumber(123.6), '124')
  const args = parseArgs(['--streams', '10000', '--redis', '--profile', 'spike', 'stray'])
  t.equal(args.get('streams'), '10000')
  t.equal(args.get('redis'), 'true')
  t.equal(args.get('profile'), 'spike')
})

t.test('charts are standalone SVG with one panel per chart and a line per series', async (t) => {
  const svg = svgCharts([
    { title: 'p99 <staleness>', yLabel: 'ms', series: [{ name: 'tickstream', points: [[0, 1], [1, 3]] }, { name: 'nchan', points: [[0, 2], [1, 2]] }] },
    { title: 'streams', yLabel: 'n', series: [{ name: 'open', points: [[0, 10]] }] }
  ])
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="760" height="440"/)
  t.equal((svg.match(/<path /g) ?? []).length, 3, 'three lines')
  t.match(svg, /p99 &lt;staleness&gt;/, 'titles are escaped')
})

t.test('stepIndexAt finds the step an answer falls in, and none outside the profile', async (t) => {
  const steps = stepsOf(stagedProfile(100, 150), 0.1)
  const last = steps.length - 1
  const end = (steps[last]?.startsAt ?? 0) + (steps[last]?.seconds ?? 0)
  t.equal(stepIndexAt(steps, 0), 0, 'the first instant is the first step')
  steps.forEach((step, index) => {
    t.equal(stepIndexAt(steps, step.startsAt), index, `step ${index} starts in itself`)
    t.equal(stepIndexAt(steps, step.startsAt + step.seconds / 2), index, `the middle of step ${index}`)
  })
  t.equal(stepIndexAt(steps, end), -1, 'the end of the profile is past it')
  t.equal(stepIndexAt(steps, -0.5), -1, 'before the start')
  t.equal(stepIndexAt([], 1), -1, 'no steps')
})

t.test('npmRunCommand names the script and, after --, its arguments', async (t) => {
  t.equal(npmRunCommand('load:accept-cost', []), 'npm run load:accept-cost')
  t.equal(npmRunCommand('load:gc-promotion', ['--seconds', '3']), 'npm run load:gc-promotion -- --seconds 3')
})

t.test('roundRatios divides round by round, and says NaN for a round the reference lacks', async (t) => {
  const result = (target: string, roundThroughputs: number[]): TargetResult => ({
    target, requests: 0, seconds: 0, throughput: 0, p50: 0, p99: 0, max: 0, non2xx: 0, errors: 0, timeouts: 0, cpuMicrosPerRequest: 0, roundThroughputs, steps: []
  })
  t.same(roundRatios(result('tickstream', [800, 1800]), result('bare', [1000, 2000])), [0.8, 0.9])
  const [ratio] = roundRatios(result('tickstream', [800]), result('bare', []))
  t.ok(Number.isNaN(ratio), 'a missing round is not a ratio')
})

t.test('the registration summary gives the targets side by side, the ratios, round by round, and the split', async (t) => {
  const result = (target: string, throughput: number, p99: number, cpuMicrosPerRequest: number, roundThroughputs: number[]): TargetResult => ({
    target, requests: throughput * 60, seconds: 60, throughput, p50: p99 / 2, p99, max: p99 * 3, non2xx: 0, errors: 0, timeouts: 0, cpuMicrosPerRequest, roundThroughputs, steps: []
  })
  const baseline = { ...result('bare Fastify route', 1000, 100, 40, [900, 1100]), steps: [{ at: 0, connections: 10, p99: 50, throughput: 1200 }, { at: 2, connections: 15, p99: 80, throughput: 1000 }] }
  const tickstream = { ...result('tickstream', 800, 120, 50, [720, 880]), steps: [{ at: 0, connections: 10, p99: 60, throughput: 900 }, { at: 2, connections: 15, p99: 84, throughput: 850 }] }
  const pluginsOnly = result('tickstream plugins, bare handler', 900, 110, 45, [810, 990])
  const run = { profile: 'spike', scale: 0.1, warmupSeconds: 5, users: 1500, rounds: 2, baseline, tickstream, pluginsOnly, ratios: registrationRatios(tickstream, baseline) }
  const text = registrationSummary(run, 'npm run load:registration -- --profile spike --breakdown')
  t.match(text, /^# Registration load \(spike, scale 0\.1, users: 1500, rounds: 2, warm-up: 5 s per target\)\n\n`npm run load:registration -- --profile spike --breakdown`/)
  t.match(text, '| tickstream | 48000 | 800 | 60 | 120 | 360 | 0 | 0 | 0 | 50 |', 'one row per target, 2xx first')
  t.match(text, 'throughput 0.80x, p99 1.20x, server CPU per registration 1.25x (the throughput the servers\' own CPU would allow: 0.80x)')
  t.match(text, 'At the peak (15 connections): throughput 0.85x, p99 1.05x\n', 'the peak step alone, apart from the whole profile')
  t.match(text, 'Throughput ratio round by round: 0.80x, 0.80x; plugins around the bare handler / baseline: 0.90x, 0.90x')
  t.match(text, "plugins and hooks around the baseline's handler 0.90x the baseline; the session work on top of them 0.89x that")

  const withoutBreakdown = registrationSummary({ ...run, pluginsOnly: undefined }, 'npm run load:registration')
  t.notMatch(withoutBreakdown, 'plugins', 'no split without --breakdown')
  t.match(withoutBreakdown, 'Throughput ratio round by round: 0.80x, 0.80x\n')
})

t.test('the instruction summary gives each target against the first, both ways', async (t) => {
  const text = instructionsSummary([
    { target: 'bare Fastify route', requests: 1000, instructionsPerRequest: 560_000 },
    { target: 'tickstream', requests: 1000, instructionsPerRequest: 700_000 }
  ], 'npm run load:instructions')
  t.match(text, '| bare Fastify route | 1000 | 560 | 1.00 | 1.00 |')
  t.match(text, '| tickstream | 1000 | 700 | 1.25 | 0.80 |', 'cost 1.25x the bare route, 0.80x its throughput-equivalent')
})

t.test('at the peak: the steps at the highest connection count, their mean throughput and highest p99', async (t) => {
  const withSteps = (steps: TargetResult['steps']): TargetResult => ({
    target: 'x', requests: 0, seconds: 0, throughput: 0, p50: 0, p99: 0, max: 0, non2xx: 0, errors: 0, timeouts: 0, cpuMicrosPerRequest: 0, roundThroughputs: [], steps
  })
  t.same(atPeak(withSteps([
    { at: 0, connections: 100, p99: 10, throughput: 5000 },
    { at: 2, connections: 1500, p99: 40, throughput: 3000 },
    { at: 4, connections: 1500, p99: 30, throughput: 2000 },
    { at: 6, connections: 750, p99: 90, throughput: 1000 }
  ])), { connections: 1500, throughput: 2500, p99: 40 })
  const none = atPeak(withSteps([]))
  t.ok(Number.isNaN(none.throughput) && Number.isNaN(none.p99), 'no steps, no figures')
})

t.test('sampleProcess reads CPU time from /proc and splits the kernel\'s part out, as getrusage does', async (t) => {
  const before = sampleProcess(process.pid)
  const usageBefore = process.cpuUsage()
  // Kernel work (each read clears 64 KiB) until getrusage, an independent source, has counted
  // 200 ms of system time.
  const zeros = openSync('/dev/zero', 'r')
  const buffer = Buffer.alloc(64 * 1024)
  while (process.cpuUsage(usageBefore).system < 200_000) readSync(zeros, buffer)
  closeSync(zeros)
  const after = sampleProcess(process.pid)
  const usage = process.cpuUsage(usageBefore)
  const kernel = after.kernelCpuMicros - before.kernelCpuMicros
  const total = after.cpuMicros - before.cpuMicros
  // /proc counts in 10 ms ticks; the two sources agree within a few ticks.
  t.ok(Math.abs(kernel - usage.system) <= 50_000, `system time: /proc ${kernel} µs, getrusage ${usage.system} µs`)
  t.ok(Math.abs(total - (usage.system + usage.user)) <= 50_000, `all CPU time: /proc ${total} µs, getrusage ${usage.system + usage.user} µs`)
  t.ok(after.rssBytes > 0, 'RSS read')
})
