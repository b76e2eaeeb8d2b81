import t from 'tap'
import { AnswerLog } from '../../load/lib/answer-log.js'

t.test('an answer log keeps every answer in order, past its initial capacity', async (t) => {
  const log = new AnswerLog(2)
  const answers = [[0.5, 10], [0.75, 9], [1.25, 100], [2, 9.5], [3.5, 0.25]] as const
  for (const [at, latency] of answers) log.push(at, latency)
  t.equal(log.length, answers.length)
  answers.forEach(([at, latency], index) => {
    t.equal(log.timeAt(index), at, `answer ${index}: its time`)
    t.equal(log.latencyAt(index), latency, `answer ${index}: its latency`)
  })
  t.ok(Number.isNaN(log.timeAt(answers.length)), 'the slot after the last answer (within the capacity) has no time')
  t.ok(Number.isNaN(log.latencyAt(answers.length)), '... and no latency')
  t.ok(Number.isNaN(log.timeAt(answers.length * 10)), 'an index past the capacity has no time')
})

t.test('latencies sort as numbers, in a copy, over the answers pushed only', async (t) => {
  const log = new AnswerLog(8)
  for (const latency of [10, 9, 100, 9.5]) log.push(0, latency)
  t.same([...log.sortedLatencies()], [9, 9.5, 10, 100], 'numeric order (a string sort would put 100 before 9), no unused slots')
  t.equal(log.latencyAt(0), 10, 'the log itself keeps arrival order')
  t.same([...new AnswerLog().sortedLatencies()], [], 'an empty log has no latencies')
})
