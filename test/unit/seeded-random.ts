/**
 * A small seeded PRNG (mulberry32) for tests that need "random" inputs: deterministic, so a
 * failure reproduces, and it stands in for Math.random, the one source of randomness tests
 * are allowed to replace. Returns numbers in [0, 1).
 */
export function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [0, n) from `random`. */
export function randomInt (random: () => number, n: number): number {
  return Math.floor(random() * n)
}
