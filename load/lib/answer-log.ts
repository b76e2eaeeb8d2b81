/**
 * Every answer a load run counts: when it came (seconds into its round) and how long it took
 * (ms), in two growable typed arrays rather than an object per answer.
 *
 * Why: a registration run counts millions of answers (2.5 million per target at `--scale 0.1`
 * on a fast machine), and as objects they filled the generator's heap with as many small
 * objects. Its garbage collector then marked them again and again, on the same two cores as
 * the server under test, and more the later a target ran. Typed arrays live outside the
 * collected heap.
 */
export class AnswerLog {
  private times: Float64Array
  private latencies: Float64Array
  private count = 0

  constructor (initialCapacity = 1 << 16) {
    this.times = new Float64Array(Math.max(1, initialCapacity))
    this.latencies = new Float64Array(Math.max(1, initialCapacity))
  }

  get length (): number {
    return this.count
  }

  push (at: number, latency: number): void {
    if (this.count === this.times.length) this.grow()
    this.times[this.count] = at
    this.latencies[this.count] = latency
    this.count++
  }

  /** Seconds into its round of answer `index`; NaN past the last answer. */
  timeAt (index: number): number {
    return index < this.count ? this.times[index] ?? Number.NaN : Number.NaN
  }

  /** Latency of answer `index`, in ms; NaN past the last answer. */
  latencyAt (index: number): number {
    return index < this.count ? this.latencies[index] ?? Number.NaN : Number.NaN
  }

  /** Every latency, in ascending order (a copy). */
  sortedLatencies (): Float64Array {
    return this.latencies.slice(0, this.count).sort()
  }

  private grow (): void {
    const times = new Float64Array(this.times.length * 2)
    times.set(this.times)
    this.times = times
    const latencies = new Float64Array(this.latencies.length * 2)
    latencies.set(this.latencies)
    this.latencies = latencies
  }
}
