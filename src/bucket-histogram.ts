/**
 * A histogram for the hot paths: an observation is a short scan of the bucket bounds and three
 * additions, with nothing allocated. The metrics plugin turns it into Prometheus text at scrape
 * time, as it does the core's counters.
 *
 * Why not prom-client's `Histogram.observe`: per call it builds a closure and a labels object,
 * hashes the (empty) labels and indexes its buckets by the bound as an object key, which
 * formats the float as a string each time. That was 1.3 % of a registration's CPU under load
 * (BENCHMARKS.md), and it ran once per `prices` event of every stream as well.
 */
export class BucketHistogram {
  /** Observations per bucket, not cumulative: index i counts values in (bound[i-1], bound[i]]; the last, values above every bound. */
  private readonly counts: Float64Array
  private total = 0
  private observations = 0

  readonly upperBounds: readonly number[]

  constructor (upperBounds: readonly number[]) {
    // A copy: a caller changing its array later must not break the buckets.
    this.upperBounds = Object.freeze([...upperBounds])
    for (let index = 1; index < upperBounds.length; index++) {
      if (!((upperBounds[index - 1] ?? 0) < (upperBounds[index] ?? 0))) throw new Error('bucket bounds must increase')
    }
    this.counts = new Float64Array(upperBounds.length + 1)
  }

  observe (value: number): void {
    // NaN or an infinity would poison the sum for good: an observation is a duration or a count.
    if (!Number.isFinite(value)) return
    const bounds = this.upperBounds
    let index = 0
    while (index < bounds.length && value > (bounds[index] as number)) index++
    this.counts[index] = (this.counts[index] as number) + 1
    this.total += value
    this.observations++
  }

  get sum (): number {
    return this.total
  }

  get count (): number {
    return this.observations
  }

  /** Prometheus buckets: the count of observations at or below each bound, then `+Inf` (= count). */
  cumulativeBuckets (): Array<{ le: number | '+Inf', count: number }> {
    const buckets: Array<{ le: number | '+Inf', count: number }> = []
    let running = 0
    for (const [index, bound] of this.upperBounds.entries()) {
      running += this.counts[index] as number
      buckets.push({ le: bound, count: running })
    }
    buckets.push({ le: '+Inf', count: this.observations })
    return buckets
  }
}
