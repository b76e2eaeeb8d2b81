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

t.test('NaN and infinities are not observations; bounds must increase and are copied', async (t) => {
  const bounds = [1]
  const histogram = new BucketHistogram(bounds)
  histogram.observe(Number.NaN)
  histogram.observe(Number.POSITIVE_INFINITY)
  histogram.observe(Number.NEGATIVE_INFINITY)
  t.equal(histogram.count, 0)
  bounds.push(0)
  t.same(histogram.upperBounds, [1], 'the caller\'s array changing later changes nothing')
  t.equal(histogram.sum, 0)
  t.throws(() => new BucketHistogram([1, 1]), /must increase/)
  t.throws(() => new BucketHistogram([2, 1]), /must increase/)
  t.same(new BucketHistogram([]).cumulativeBuckets(), [{ le: '+Inf', count: 0 }], 'no bounds: only +Inf')
})
