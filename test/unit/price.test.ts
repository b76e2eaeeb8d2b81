import t from 'tap'
import {
  MAX_PRICE_BYTES,
  normalizeTicker,
  normalizedTickerCacheSize,
  normalizeTickerList,
  priceUpdate,
  toPriceUpdate,
  type PriceUpdate
} from '../../src/price.js'

const RECEIVED_AT = 1_764_312_345_678

/** The update of a price that must be accepted; fails the test (and throws) otherwise. */
function accepted (input: unknown, expectedTicker?: string): PriceUpdate {
  const result = toPriceUpdate(input, RECEIVED_AT, expectedTicker)
  if (!result.ok) throw new Error(`expected ${JSON.stringify(input)} to be accepted, got: ${result.reason}`)
  return result.update
}

t.test('normalizeTicker trims and upper-cases', async (t) => {
  t.equal(normalizeTicker('aapl'), 'AAPL')
  t.equal(normalizeTicker('  msft  '), 'MSFT')
  t.equal(normalizeTicker('\tnvda\n'), 'NVDA')
  t.equal(normalizeTicker('brk.b'), 'BRK.B')
  t.equal(normalizeTicker('bf-b'), 'BF-B')
  t.equal(normalizeTicker('7203'), '7203', 'a symbol may start with a digit')
  t.equal(normalizeTicker('A'), 'A', 'one character is enough')
  t.equal(normalizeTicker('ABCDEFGHIJKLMNO'), 'ABCDEFGHIJKLMNO', '15 characters is the longest')
  t.equal(normalizeTicker('A..--'), 'A..--', 'dots and dashes may follow the first character')
})

t.test('normalizeTicker refuses what does not match the symbol pattern', async (t) => {
  for (const raw of ['', '   ', '.A', '-A', 'A B', 'A_B', 'A/B', 'A:B', 'ABCDEFGHIJKLMNOP', 'ÄPFEL', 'A\u0000']) {
    t.equal(normalizeTicker(raw), undefined, `${JSON.stringify(raw)} is not a symbol`)
  }
})

t.test('normalizeTicker answers the same again from its cache, which stays bounded', async (t) => {
  t.equal(normalizeTicker(' goog '), 'GOOG')
  t.equal(normalizeTicker(' goog '), 'GOOG', 'the same answer the second time')
  t.equal(normalizeTicker('a b'), undefined)
  t.equal(normalizeTicker('a b'), undefined, 'a refusal is remembered as a refusal')
  const before = normalizedTickerCacheSize()
  const long = `${'x'.repeat(40)}`
  t.equal(normalizeTicker(long), undefined)
  t.equal(normalizedTickerCacheSize(), before, 'an input longer than any symbol is not kept')
  // Ten thousand invented symbols, then more: the cache starts over instead of growing.
  for (let index = 0; index < 12_000; index++) normalizeTicker(`s${index}`)
  t.ok(normalizedTickerCacheSize() <= 10_000, `${normalizedTickerCacheSize()} entries after 12 000 distinct inputs`)
  t.equal(normalizeTicker(' goog '), 'GOOG', 'still right after it started over')
})

t.test('normalizeTickerList normalizes and drops duplicates, keeping first-seen order', async (t) => {
  const result = normalizeTickerList(['msft', ' aapl', 'MSFT', 'nvda ', 'AAPL', 'msft'], 50)
  t.strictSame(result, { ok: true, tickers: ['MSFT', 'AAPL', 'NVDA'] })
})

t.test('normalizeTickerList needs at least one ticker', async (t) => {
  const result = normalizeTickerList([], 50)
  t.equal(result.ok, false)
  if (!result.ok) t.ok(result.message.length > 0, 'says what is wrong')
})

t.test('normalizeTickerList limits the distinct tickers, counted after deduplication', async (t) => {
  t.strictSame(normalizeTickerList(['A', 'B', 'C'], 3), { ok: true, tickers: ['A', 'B', 'C'] }, 'exactly the maximum is fine')
  t.strictSame(normalizeTickerList(['a', 'A', ' a ', 'b', 'B'], 2), { ok: true, tickers: ['A', 'B'] },
    'five entries but two distinct tickers fit a maximum of 2')
  const tooMany = normalizeTickerList(['A', 'B', 'C', 'D'], 3)
  t.equal(tooMany.ok, false, 'four distinct tickers exceed a maximum of 3')
  if (!tooMany.ok) t.ok(tooMany.message.includes('3'), `the message states the maximum: ${tooMany.message}`)
})

t.test('normalizeTickerList names the index of an invalid entry', async (t) => {
  const result = normalizeTickerList(['AAPL', 'MSFT', 'not valid', 'NVDA'], 50)
  t.equal(result.ok, false)
  if (!result.ok) t.match(result.message, /(^|\D)2(\D|$)/, `the message names index 2: ${result.message}`)
  const first = normalizeTickerList(['', 'AAPL'], 50)
  t.equal(first.ok, false, 'an empty string is not a ticker')
  if (!first.ok) t.match(first.message, /(^|\D)0(\D|$)/, `the message names index 0: ${first.message}`)
})

t.test('toPriceUpdate refuses anything that is not a plain object', async (t) => {
  for (const input of [null, undefined, 'AAPL', 12.5, true, [], [{ ticker: 'AAPL', price: 1, ts: 1 }]]) {
    t.equal(toPriceUpdate(input, RECEIVED_AT).ok, false, `${JSON.stringify(input)} is refused`)
  }
})

t.test('toPriceUpdate refuses a missing, non-string or invalid ticker', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['missing', { price: 1, ts: 1 }],
    ['null', { ticker: null, price: 1, ts: 1 }],
    ['a number', { ticker: 42, price: 1, ts: 1 }],
    ['an array', { ticker: ['AAPL'], price: 1, ts: 1 }],
    ['empty', { ticker: '', price: 1, ts: 1 }],
    ['with a space', { ticker: 'AA PL', price: 1, ts: 1 }],
    ['too long', { ticker: 'ABCDEFGHIJKLMNOP', price: 1, ts: 1 }]
  ]
  for (const [label, input] of cases) {
    const result = toPriceUpdate(input, RECEIVED_AT)
    t.equal(result.ok, false, `ticker ${label} is refused`)
    if (!result.ok) t.ok(result.reason.length > 0, 'with a reason')
  }
})

t.test('toPriceUpdate with a channel ticker refuses a price for another ticker', async (t) => {
  t.equal(toPriceUpdate({ ticker: 'MSFT', price: 1, ts: 1 }, RECEIVED_AT, 'AAPL').ok, false)
  t.equal(toPriceUpdate({ ticker: 'AAPL.X', price: 1, ts: 1 }, RECEIVED_AT, 'AAPL').ok, false)
  t.equal(accepted({ ticker: ' aapl ', price: 1, ts: 1 }, 'AAPL').ticker, 'AAPL',
    'the comparison is made after normalization')
})

t.test('toPriceUpdate refuses a price that is not a finite non-negative JSON number', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['missing', { ticker: 'AAPL', ts: 1 }],
    ['a numeric string', { ticker: 'AAPL', price: '12.5', ts: 1 }],
    ['null', { ticker: 'AAPL', price: null, ts: 1 }],
    ['a boolean', { ticker: 'AAPL', price: true, ts: 1 }],
    ['an object', { ticker: 'AAPL', price: { value: 1 }, ts: 1 }],
    ['negative', { ticker: 'AAPL', price: -0.01, ts: 1 }],
    ['NaN', { ticker: 'AAPL', price: Number.NaN, ts: 1 }],
    ['Infinity', { ticker: 'AAPL', price: Number.POSITIVE_INFINITY, ts: 1 }],
    ['-Infinity', { ticker: 'AAPL', price: Number.NEGATIVE_INFINITY, ts: 1 }]
  ]
  for (const [label, input] of cases) {
    t.equal(toPriceUpdate(input, RECEIVED_AT).ok, false, `price ${label} is refused`)
  }
  t.equal(accepted({ ticker: 'AAPL', price: 0, ts: 1 }).price.price, 0, 'zero is a valid price')
})

t.test('toPriceUpdate refuses a ts that is present but not a finite number', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['null', null],
    ['a numeric string', '1764312345678'],
    ['a date string', '2025-11-28T06:45:45Z'],
    ['a boolean', true],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY]
  ]
  for (const [label, ts] of cases) {
    t.equal(toPriceUpdate({ ticker: 'AAPL', price: 1, ts }, RECEIVED_AT).ok, false, `ts ${label} is refused`)
  }
  t.equal(accepted({ ticker: 'AAPL', price: 1, ts: 0 }).ts, 0, 'ts 0 is a finite number')
})

t.test('toPriceUpdate refuses a price whose serialization exceeds 8 KiB, counting bytes', async (t) => {
  t.equal(MAX_PRICE_BYTES, 8 * 1024)
  const base = { ticker: 'AAPL', price: 1, ts: 1, note: '' }
  const room = MAX_PRICE_BYTES - Buffer.byteLength(JSON.stringify(base))
  const atLimit = accepted({ ...base, note: 'x'.repeat(room) })
  t.equal(Buffer.byteLength(atLimit.json), MAX_PRICE_BYTES, 'exactly 8 KiB is accepted')
  t.equal(toPriceUpdate({ ...base, note: 'x'.repeat(room + 1) }, RECEIVED_AT).ok, false, 'one byte more is refused')
  // 'é' is one UTF-16 unit but two UTF-8 bytes: the limit is on bytes.
  const multiByte = { ...base, note: 'é'.repeat(Math.ceil(room / 2) + 1) }
  t.ok(JSON.stringify(multiByte).length < MAX_PRICE_BYTES, 'fewer characters than the limit')
  t.equal(toPriceUpdate(multiByte, RECEIVED_AT).ok, false, 'but more bytes: refused')
})

t.test('toPriceUpdate refuses, without throwing, a price nested too deeply to serialize', async (t) => {
  const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth))
  // Deeper than JSON.stringify's stack allows, though JSON.parse took it: a 1 MiB body can.
  const result = toPriceUpdate({ ticker: 'AAPL', price: 1, extra: nested(200_000) }, RECEIVED_AT)
  t.same(result, { ok: false, reason: 'nested too deeply to serialize' })
  t.equal(toPriceUpdate({ ticker: 'AAPL', price: 1, extra: nested(200_000) }, RECEIVED_AT, 'AAPL').ok, false, 'the bus path too')
  t.equal(accepted({ ticker: 'AAPL', price: 1, extra: nested(100) }).json, `{"ticker":"AAPL","price":1,"extra":${'['.repeat(100)}${']'.repeat(100)},"ts":${RECEIVED_AT}}`, 'ordinary nesting is kept as sent')
})

t.test('toPriceUpdate uses the receive time when ts is missing', async (t) => {
  const update = accepted({ ticker: 'AAPL', price: 187.42 })
  t.equal(update.ts, RECEIVED_AT)
  t.equal(update.price.ts, RECEIVED_AT)
  t.equal(JSON.parse(update.json).ts, RECEIVED_AT, 'the serialized price carries it too')
})

t.test('toPriceUpdate keeps a given ts rather than the receive time', async (t) => {
  const update = accepted({ ticker: 'AAPL', price: 187.42, ts: 1234 })
  t.equal(update.ts, 1234)
  t.equal(update.price.ts, 1234)
})

t.test('toPriceUpdate normalizes the ticker everywhere in the update', async (t) => {
  const update = accepted({ ticker: '  brk.b ', price: 412.5, ts: 5 })
  t.equal(update.ticker, 'BRK.B')
  t.equal(update.price.ticker, 'BRK.B')
  t.equal(JSON.parse(update.json).ticker, 'BRK.B')
})

t.test('toPriceUpdate passes extra fields through into price and json', async (t) => {
  const input = { ticker: 'msft', price: 410.1, ts: 7, venue: 'XNAS', size: 100, meta: { halted: false, tags: ['a'] } }
  const update = accepted(input)
  t.strictSame(update.price, { ticker: 'MSFT', price: 410.1, ts: 7, venue: 'XNAS', size: 100, meta: { halted: false, tags: ['a'] } })
  t.equal(update.json, JSON.stringify(update.price), 'json is the serialized price')
  t.strictSame(JSON.parse(update.json), update.price)
  t.equal(input.ticker, 'msft', 'the input object is not modified')
})

t.test('toPriceUpdate json always equals JSON.stringify(price)', async (t) => {
  for (const input of [
    { ticker: 'aapl', price: 1 },
    { ticker: 'AAPL', price: 0.1, ts: 3, extra: 'é\u2028"quoted"' },
    { extra: 1, ticker: 'V', price: 1e21, ts: -5 }
  ]) {
    const update = accepted(input)
    t.equal(update.json, JSON.stringify(update.price))
    t.equal(update.ticker, update.price.ticker)
    t.equal(update.ts, update.price.ts)
  }
})

t.test('a "__proto__" key from JSON.parse stays data and pollutes no prototype', async (t) => {
  const input: unknown = JSON.parse('{"ticker":"AAPL","price":1,"__proto__":{"polluted":true,"ts":99}}')
  const update = accepted(input)
  t.equal(update.ts, RECEIVED_AT, 'a ts hidden under __proto__ is not taken for the price\'s ts')
  t.equal(Object.getPrototypeOf(update.price), Object.prototype, 'the price has the ordinary prototype')
  t.equal((update.price as Record<string, unknown>).polluted, undefined, 'the price did not inherit from it')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')
  t.notOk(Object.hasOwn(Object.prototype, 'polluted'))
  t.ok(Object.hasOwn(update.price, '__proto__'), 'it is kept as an own data property (an extra field)')
  t.ok(Object.hasOwn(JSON.parse(update.json) as object, '__proto__'), 'and serialized as one')
})

t.test('priceUpdate serializes a trusted price once', async (t) => {
  const price = { ticker: 'AAPL', price: 187.42, ts: 11 }
  const update = priceUpdate(price)
  t.equal(update.ticker, 'AAPL')
  t.equal(update.ts, 11)
  t.equal(update.price, price)
  t.equal(update.json, JSON.stringify(price))
})
