import t from 'tap'
import { acceptCostMarkdown, runAcceptCost } from '../../load/accept-cost.js'
import { runChurn } from '../../load/churn.js'
import { gcPromotionMarkdown, runGcPromotion, startOfNextLine, youngGcLines } from '../../load/gc-promotion.js'
import { INSTRUCTION_TARGETS, runInstructions, valgrindInstalled } from '../../load/instructions.js'
import { NCHAN_TARGET, runFanout, TICKSTREAM_TARGET } from '../../load/fanout.js'
import { nchanInstalled } from '../../load/lib/nchan.js'
import { runMemory } from '../../load/memory.js'
import { startBaselineServer, startBreakdownServer, startTickstream } from '../../load/lib/process.js'
import { runProfiles, stagedProfile, stepsOf } from '../../load/registration.js'
import { SHARED_REDIS_URL } from '../helpers/redis.js'

t.setTimeout(600_000)

/**
 * Short versions of the load scenarios: they check outcomes (no errors, no failed opens, no
 * leaks), never timings. The real runs and their figures are in BENCHMARKS.md.
 *
 * The callgrind smoke comes last and the file's timeout is raised for it: Node under valgrind
 * takes a minute or two, and run beside the timing-sensitive load-shedding test (tap runs two
 * files at a time) it starved that test in CI twice; by the time it starts here, that file is
 * long done.
 */

t.test('registration smoke: every target answers every request with a 201', async (t) => {
  const baseline = await startBaselineServer()
  t.teardown(async () => { await baseline.stop() })
  const tickstream = await startTickstream({ FEED: 'none', RATE_LIMIT_MAX: '0' })
  t.teardown(async () => { await tickstream.stop() })
  const breakdown = await startBreakdownServer({ FEED: 'none', RATE_LIMIT_MAX: '0' })
  t.teardown(async () => { await breakdown.stop() })
  const steps = stepsOf(stagedProfile(10, 15), 0.01)
  const rounds = 2
  const results = await runProfiles([
    { name: 'baseline', server: baseline },
    { name: 'tickstream', server: tickstream },
    { name: 'tickstream plugins, bare handler', server: breakdown, path: '/sessions-bare' }
  ], steps, undefined, rounds, 0.5)
  t.equal(results.length, 3)
  for (const result of results) {
    t.ok(result.requests > 100, `${result.target}: ${result.requests} requests`)
    t.equal(result.non2xx, 0, `${result.target}: no non-2xx`)
    t.equal(result.errors, 0, `${result.target}: no errors`)
    t.equal(result.timeouts, 0, `${result.target}: no timeouts`)
    t.ok(result.cpuMicrosPerRequest > 0, `${result.target}: the server's CPU per registration measured (${Math.round(result.cpuMicrosPerRequest)} µs)`)
    t.equal(result.roundThroughputs.length, rounds, `${result.target}: one throughput per round`)
    t.ok(result.roundThroughputs.every((throughput) => throughput > 0), `${result.target}: every round answered`)
    // The rounds split the answers the totals count, so their mean is the whole run's rate:
    // this guards the per-round bookkeeping (an answer counted in no round, or in two).
    const meanOfRounds = result.roundThroughputs.reduce((sum, throughput) => sum + throughput, 0) / rounds
    t.ok(Math.abs(meanOfRounds - result.throughput) < 1e-6 * result.throughput, `${result.target}: rounds add up to the total`)
  }
  // The warm-up's registrations reached the server but are in no count: at least one per
  // warm-up connection. Without a warm-up the only uncounted ones would be those in flight when
  // a layer ends, at most one per connection of the profile and round (15 x 2 here).
  const metrics = await (await fetch(`${tickstream.url}/metrics`)).text()
  const registered = Number(/^tickstream_sessions_registered_total (\d+)$/m.exec(metrics)?.[1])
  const counted = results[1]?.requests ?? Number.NaN
  t.ok(registered - counted >= 100, `tickstream registered ${registered} sessions, ${counted} of them counted`)
})

const FANOUT_SMOKE = { streams: 100, tickersPerStream: 5, universe: 50, rate: 50, warmupSeconds: 1, measureSeconds: 2 }

for (const target of [TICKSTREAM_TARGET, NCHAN_TARGET]) {
  t.test(`fan-out smoke (${target.name}): every stream opens, stays open and receives prices`, async (t) => {
    if (target === NCHAN_TARGET) t.ok(nchanInstalled(), 'nginx + nchan installed (.ci/run installs them)')
    const result = await runFanout(target, FANOUT_SMOKE)
    t.equal(result.opened, 100)
    t.equal(result.failedOpens, 0)
    t.equal(result.earlyEnds, 0)
    t.ok(result.deliveredPerSecond > 0, 'prices delivered')
  })
}

t.test('memory smoke: heap snapshots before and after, a per-stream census that includes the streams themselves', async (t) => {
  const result = await runMemory(200, 1)
  t.equal(result.opened, 200, 'every stream opened')
  t.ok(result.heapPerStreamBytes > 0, `heap per stream ${Math.round(result.heapPerStreamBytes)} bytes`)
  const streams = result.perStream.find((row) => row.kind === 'SessionStream')
  t.equal(streams?.countPerStream, 1, 'exactly one SessionStream per open stream')
})

for (const redisUrl of [undefined, SHARED_REDIS_URL]) {
  t.test(`churn smoke (${redisUrl === undefined ? 'embedded' : 'Redis'}): every exit path, nothing left behind`, async (t) => {
    const result = await runChurn({ sessions: 400, concurrency: 16, redisUrl })
    // Memory within 10 % (heap and RSS) is a check for the 100k run; a 400-session run is too small for it.
    const leaks = result.leaks.filter((leak) => !leak.startsWith('heap') && !leak.startsWith('RSS'))
    t.same(leaks, [], 'no leak')
    t.same(result.gauges, { sessionsActive: 0, streamsOpen: 0, busSubscriptions: 0, responsesOpen: 0 })
    t.equal(result.subscriptions.made, result.subscriptions.released)
    t.ok(result.rss.afterChurnMb > 0 && result.heap.afterChurnMb > 0, 'the server process measured its own heap and RSS')
    for (const [exitPath, count] of Object.entries(result.byPath)) t.ok(count > 0, `${exitPath} exercised (${count})`)
    if (redisUrl !== undefined) t.ok(Object.values(result.pubsubNumsub ?? {}).every((count) => count === 0), 'PUBSUB NUMSUB 0 for every channel')
  })
}

t.test('accept-cost smoke: a server with and one without extra descriptors answer every new connection', async (t) => {
  const result = await runAcceptCost({ extra: 3, concurrency: 2, seconds: 0.3, warmupSeconds: 0.1, rounds: 2 })
  t.equal(result.rounds.length, 2)
  for (const round of result.rounds) {
    t.same(round.measurements.map((m) => m.descriptors), [1, 4], 'the socket alone, then with 3 more descriptors')
    for (const m of round.measurements) {
      t.ok(m.connections > 0, `${m.descriptors} descriptors: ${m.connections} connections answered`)
      t.equal(m.failed, 0, `${m.descriptors} descriptors: no connection failed`)
    }
  }
  t.match(acceptCostMarkdown(result, 'npm run load:accept-cost'), /\| 2 \| 4 \| \d+ \| 0 \|/, 'the report lists round 2 with 4 descriptors')
})

t.test('gc-promotion smoke: both servers serve with pretenuring on and off, and their young GCs are read', async (t) => {
  // A count, not a time: 3000 registrations allocate some 40 MB, enough for young GCs however
  // slow the machine (a 1 s window on a slow one held 678 registrations and none).
  const results = await runGcPromotion({ connections: 20, seconds: 1, requests: 3000, warmupSeconds: 0.5 })
  t.same(results.map((r) => [r.target, r.pretenuring]), [
    ['bare Fastify route', true], ['bare Fastify route', false],
    ['tickstream plugins, bare handler', true], ['tickstream plugins, bare handler', false]
  ])
  for (const r of results) {
    t.ok(r.requests > 0, `${r.target}, pretenuring ${r.pretenuring}: ${r.requests} registrations`)
    t.ok(r.scavenges > 0, `${r.target}, pretenuring ${r.pretenuring}: ${r.scavenges} young GCs read from --trace-gc-nvp`)
    t.ok(Number.isFinite(r.promotedBytesPerRequest) && r.promotedBytesPerRequest >= 0, 'promoted bytes per request is a number')
  }
  t.match(gcPromotionMarkdown(results, 'npm run load:gc-promotion'), /\| tickstream plugins, bare handler \| off \|/)
})

t.test('youngGcLines reads the young GCs of a --trace-gc-nvp trace and nothing else', async (t) => {
  const trace = [
    'pause=1.5 mutator=10.0 gc=s reduce_memory=0 promoted=2048 semi_space_copied=100',
    'pause=9.0 mutator=50.0 gc=mc reduce_memory=0 promoted=999999',
    'some other output',
    'pause=0.5 mutator=3.0 gc=s reduce_memory=0 promoted=0'
  ].join('\n')
  const lines = youngGcLines(trace)
  t.same(lines.map((line) => [line.get('pause'), line.get('promoted')]), [['1.5', '2048'], ['0.5', '0']])
})

t.test('startOfNextLine: the measured window starts with a whole line', async (t) => {
  const text = 'first line\nsecond line\nthird'
  t.equal(startOfNextLine(text, 0), 0, 'the very start')
  t.equal(startOfNextLine(text, 11), 11, 'a line begins exactly there')
  t.equal(startOfNextLine(text, 3), 11, 'within a line: after its end')
  t.equal(startOfNextLine(text, 25), text.length, 'within the last, unfinished line: nothing')
})

t.test('instruction-count smoke: tickstream serves its registrations under callgrind and is counted', async (t) => {
  if (!valgrindInstalled()) {
    t.fail('valgrind is not installed (apt-get install valgrind; .ci/run installs it)')
    return
  }
  // tickstream alone, on one core, at normal priority: niced, it crawls beside busy test files.
  const targets = INSTRUCTION_TARGETS.filter((target) => target.name === 'tickstream')
  const results = await runInstructions(targets, 20, 20, 0)
  t.same(results.map((r) => r.target), ['tickstream'])
  for (const result of results) {
    t.equal(result.requests, 20, `${result.target}: 20 registrations counted`)
    t.ok(result.instructionsPerRequest > 10_000, `${result.target}: ${Math.round(result.instructionsPerRequest)} instructions per registration`)
  }
})
