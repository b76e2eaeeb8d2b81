import t from 'tap'
import { BucketHistogram } from '../../src/bucket-histogram.js'

t.test('observations land in the first bucket whose bound they do not exceed; above all, in +Inf', async (t) => {
  const histogram = new BucketHistogram([1, 2, 5])
  for (const value of [0, 1, 1.5, 2, 5, 5.0001, 100]) histogram.observe(value)
  t.same(histogram.cumulativeBuckets(), [
    { le: 1, count: 2 }, // 0 and 1: a bound is inclusive, as Prometheus's le says
    { le: 2, count: 4 }, // + 1.5 and 2
    { le: 5, count: 5 }, // + 5
    { le: '+Inf', count: 7 } // + 5.0001 and 100
  ])
  t.equal(histogram.count, 7)
  t.equal(histogram.sum, 0 + 1 + 1.5 + 2 + 5 + 5.0001 + 100)
})

t.test('a NaN is not an observation; bounds must increase', async (t) => {
  const histogram = new BucketHistogram([1])
  histogram.observe(Number.NaN)
  t.equal(histogram.count, 0)
  t.equal(histogram.sum, 0)
  t.throws(() => new BucketHistogram([1, 1]), /must increase/)
  t.throws(() => new BucketHistogram([2, 1]), /must increase/)
  t.same(new BucketHistogram([]).cumulativeBuckets(), [{ le: '+Inf', count: 0 }], 'no bounds: only +Inf')
})
