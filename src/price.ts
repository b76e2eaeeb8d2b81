/**
 * A price as clients see it: `{ ticker, price, ts, ...whatever else the publisher sent }`.
 * Validation lives here once, shared by `POST /prices`, the bus transports and the feed.
 */
export interface Price {
  ticker: string
  price: number
  ts: number
  [extra: string]: unknown
}

/**
 * A price on its way through the engine. `json` is the serialized price, computed once when
 * the price enters the bus so that fanning it out to N sessions costs no N serializations.
 */
export interface PriceUpdate {
  readonly ticker: string
  readonly ts: number
  readonly price: Price
  readonly json: string
}

const TICKER_PATTERN = /^[A-Z0-9][A-Z0-9.-]{0,14}$/

/** A bus message or published price larger than this is refused (contract: 8 KiB). */
export const MAX_PRICE_BYTES = 8 * 1024

/**
 * Recent answers of `normalizeTicker`, by raw input: clients send the same few symbols again
 * and again, so most calls are one lookup, and every session watching "AAPL" holds the same
 * string instead of its own copy. Bounded twice: only inputs short enough to be a symbol with
 * some whitespace are kept, and the map starts over when full, so input a client invents
 * cannot grow it.
 */
const normalizedByRaw = new Map<string, string | null>()
const NORMALIZED_CACHE_MAX_ENTRIES = 10_000
const NORMALIZED_CACHE_MAX_INPUT_LENGTH = 32

/** Trim, upper-case, validate. `undefined` when the result is not a valid symbol. */
export function normalizeTicker (raw: string): string | undefined {
  const known = normalizedByRaw.get(raw)
  if (known !== undefined) return known ?? undefined
  const normalized = raw.trim().toUpperCase()
  const ticker = TICKER_PATTERN.test(normalized) ? normalized : undefined
  if (raw.length <= NORMALIZED_CACHE_MAX_INPUT_LENGTH) {
    if (normalizedByRaw.size >= NORMALIZED_CACHE_MAX_ENTRIES) normalizedByRaw.clear()
    normalizedByRaw.set(raw, ticker ?? null)
  }
  return ticker
}

/** Entries in the normalization cache (tests check its bounds). */
export function normalizedTickerCacheSize (): number {
  return normalizedByRaw.size
}

export type TickerListResult =
  | { ok: true, tickers: string[] }
  | { ok: false, message: string }

/** Normalizes a session's ticker list: trimmed, upper-cased, validated, deduplicated in order. */
export function normalizeTickerList (raw: readonly string[], maxTickers: number): TickerListResult {
  const tickers = new Set<string>()
  for (const [index, entry] of raw.entries()) {
    const ticker = normalizeTicker(entry)
    if (ticker === undefined) {
      return { ok: false, message: `tickers/${index} is not a valid ticker symbol` }
    }
    tickers.add(ticker)
  }
  if (tickers.size === 0) return { ok: false, message: 'tickers must list at least one ticker' }
  if (tickers.size > maxTickers) {
    return { ok: false, message: `tickers must list at most ${maxTickers} distinct tickers, got ${tickers.size}` }
  }
  return { ok: true, tickers: [...tickers] }
}

export type PriceResult =
  | { ok: true, update: PriceUpdate }
  | { ok: false, reason: string }

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Validates and normalizes one price from an untrusted source. `receivedAt` stands in for a
 * missing `ts`.
 *
 * Two sources: a publisher (`POST /prices`), whose normalized price must still fit in a bus
 * message (8 KiB) so every instance accepts it; and a bus message (`channelTicker` given),
 * whose price must be for that channel and whose size the bus measured as received, before
 * a missing `ts` was filled in.
 */
export function toPriceUpdate (input: unknown, receivedAt: number, channelTicker?: string): PriceResult {
  if (!isPlainObject(input)) return { ok: false, reason: 'not an object' }
  const rawTicker = input.ticker
  if (typeof rawTicker !== 'string') return { ok: false, reason: 'ticker is not a string' }
  const ticker = normalizeTicker(rawTicker)
  if (ticker === undefined) return { ok: false, reason: 'ticker is not a valid symbol' }
  if (channelTicker !== undefined && ticker !== channelTicker) {
    return { ok: false, reason: `ticker ${ticker} does not match channel ticker ${channelTicker}` }
  }
  const value = input.price
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    return { ok: false, reason: 'price is not a finite non-negative number' }
  }
  let ts = receivedAt
  if ('ts' in input) {
    if (typeof input.ts !== 'number' || !Number.isFinite(input.ts)) {
      return { ok: false, reason: 'ts is not a finite number' }
    }
    ts = input.ts
  }
  // Spread keeps the publisher's extra fields (and their order); own keys such as
  // "__proto__" stay plain data properties, they never touch the prototype.
  const price: Price = { ...input, ticker, price: value, ts }
  const json = serialized(price)
  if (json === undefined) return { ok: false, reason: 'nested too deeply to serialize' }
  if (channelTicker === undefined && Buffer.byteLength(json) > MAX_PRICE_BYTES) return { ok: false, reason: `larger than ${MAX_PRICE_BYTES} bytes` }
  return { ok: true, update: { ticker, ts, price, json } }
}

/**
 * `JSON.stringify`, or `undefined` where it throws. What `JSON.parse` made has no cycles and no
 * BigInt, so only nesting too deep for the serializer's stack can make it throw: `JSON.parse`
 * takes arrays nested 500 000 deep (a 1 MiB `POST /prices` body, which was a 500), while
 * `JSON.stringify` runs out of stack at about 4 000 levels, fewer on a deeper stack. That is
 * within reach of an 8 KiB bus message, whose throw would escape the Redis client's handler.
 */
function serialized (price: Price): string | undefined {
  try {
    return JSON.stringify(price)
  } catch {
    return undefined
  }
}

/** For trusted, already valid prices (the simulated feed). */
export function priceUpdate (price: Price): PriceUpdate {
  return { ticker: price.ticker, ts: price.ts, price, json: JSON.stringify(price) }
}
