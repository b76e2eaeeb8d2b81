import t from 'tap'
import { INSTRUCTION_TARGETS, runInstructions, valgrindInstalled } from '../../load/instructions.js'

/**
 * The instruction-count scenario, shortened: every target starts under callgrind, answers
 * every registration with a 201 (countInstructions rejects otherwise), and gets counted.
 * Outcomes only; the counts themselves are in BENCHMARKS.md.
 */
// Node under valgrind starts in about 30 s, and slower while other test files run beside it.
t.setTimeout(300_000)

t.test('instruction-count smoke: the bare route and tickstream serve their registrations under callgrind and are counted', async (t) => {
  t.ok(valgrindInstalled(), 'valgrind installed (.ci/run installs it)')
  // The bare route and tickstream side by side, one per core; the breakdown server is the
  // registration smoke's (load-smoke.test.ts).
  const targets = INSTRUCTION_TARGETS.filter((target) => target.name !== 'tickstream plugins, bare handler')
  const results = await runInstructions(targets, 20, 20)
  t.same(results.map((r) => r.target), ['bare Fastify route', 'tickstream'])
  for (const result of results) {
    t.equal(result.requests, 20, `${result.target}: 20 registrations counted`)
    t.ok(result.instructionsPerRequest > 10_000, `${result.target}: ${Math.round(result.instructionsPerRequest)} instructions per registration`)
  }
})
