import t from 'tap'
import { INSTRUCTION_TARGETS, runInstructions, valgrindInstalled } from '../../load/instructions.js'

/**
 * The instruction-count scenario, shortened: every target starts under callgrind, answers
 * every registration with a 201 (countInstructions rejects otherwise), and gets counted.
 * Outcomes only; the counts themselves are in BENCHMARKS.md.
 */
// Node under valgrind starts in about 30 s, and slower while other test files run beside it.
t.setTimeout(300_000)

t.test('instruction-count smoke: tickstream serves its registrations under callgrind and is counted', async (t) => {
  if (!valgrindInstalled()) {
    t.fail('valgrind is not installed (apt-get install valgrind; .ci/run installs it)')
    return
  }
  // tickstream alone, on one core and at a low priority: timing-sensitive test files run
  // beside this one (the other targets are the registration smoke's, load-smoke.test.ts).
  const targets = INSTRUCTION_TARGETS.filter((target) => target.name === 'tickstream')
  const results = await runInstructions(targets, 20, 20)
  t.same(results.map((r) => r.target), ['tickstream'])
  for (const result of results) {
    t.equal(result.requests, 20, `${result.target}: 20 registrations counted`)
    t.ok(result.instructionsPerRequest > 10_000, `${result.target}: ${Math.round(result.instructionsPerRequest)} instructions per registration`)
  }
})
