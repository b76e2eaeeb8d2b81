import { connect } from 'node:net'
import t from 'tap'
import { startApp } from './helpers/app.js'
import { register, request } from './helpers/http.js'

/**
 * Malformed requests of every kind: each gets a clear 4xx in the contract's error shape, no
 * 5xx, no stack or internal detail, and the server keeps serving.
 */

interface Case {
  name: string
  method?: string
  path: string | ((sessionId: string) => string)
  body?: string
  headers?: Record<string, string>
  status?: number
}

const JSON_TYPE = { 'content-type': 'application/json' }
const TOKEN = 'publish-token'
const json = (value: unknown): string => JSON.stringify(value)
const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)

const CASES: Case[] = [
  // POST /sessions bodies: types, sizes, unicode, nesting, prototype keys, numbers as strings
  { name: 'userId number', path: '/sessions', body: json({ userId: 1, tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId boolean', path: '/sessions', body: json({ userId: true, tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId null', path: '/sessions', body: json({ userId: null, tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId array', path: '/sessions', body: json({ userId: ['a'], tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId object', path: '/sessions', body: json({ userId: { id: 'a' }, tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId with slash', path: '/sessions', body: json({ userId: 'a/b', tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId with newline', path: '/sessions', body: json({ userId: 'a\nb', tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId with NUL', path: '/sessions', body: json({ userId: 'a\u0000b', tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId emoji', path: '/sessions', body: json({ userId: '😀', tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId RTL override', path: '/sessions', body: json({ userId: 'a\u202eb', tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId with leading space', path: '/sessions', body: json({ userId: ' alice', tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'userId 129 chars', path: '/sessions', body: json({ userId: 'a'.repeat(129), tickers: ['AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'tickers object', path: '/sessions', body: json({ userId: 'a', tickers: { 0: 'AAPL' } }), headers: JSON_TYPE, status: 400 },
  { name: 'tickers null', path: '/sessions', body: json({ userId: 'a', tickers: null }), headers: JSON_TYPE, status: 400 },
  { name: 'tickers number', path: '/sessions', body: json({ userId: 'a', tickers: 5 }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker nested array', path: '/sessions', body: json({ userId: 'a', tickers: [['AAPL']] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker null', path: '/sessions', body: json({ userId: 'a', tickers: [null] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker number', path: '/sessions', body: json({ userId: 'a', tickers: [1] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker empty string', path: '/sessions', body: json({ userId: 'a', tickers: [''] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker with space inside', path: '/sessions', body: json({ userId: 'a', tickers: ['AA PL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker leading dot', path: '/sessions', body: json({ userId: 'a', tickers: ['.AAPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker unicode', path: '/sessions', body: json({ userId: 'a', tickers: ['ÄPPL'] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker emoji', path: '/sessions', body: json({ userId: 'a', tickers: ['📈'] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker path traversal', path: '/sessions', body: json({ userId: 'a', tickers: ['../../etc'] }), headers: JSON_TYPE, status: 400 },
  { name: 'ticker redis glob', path: '/sessions', body: json({ userId: 'a', tickers: ['AAPL*'] }), headers: JSON_TYPE, status: 400 },
  { name: '51 distinct tickers', path: '/sessions', body: json({ userId: 'a', tickers: Array.from({ length: 51 }, (_, i) => `T${i}`) }), headers: JSON_TYPE, status: 400 },
  { name: 'top-level __proto__', path: '/sessions', body: '{"__proto__":{"admin":true},"userId":"a","tickers":["AAPL"]}', headers: JSON_TYPE, status: 400 },
  { name: 'nested __proto__', path: '/sessions', body: '{"userId":"a","tickers":["AAPL"],"x":{"__proto__":{"admin":true}}}', headers: JSON_TYPE, status: 400 },
  { name: 'constructor.prototype', path: '/sessions', body: '{"userId":"a","tickers":["AAPL"],"constructor":{"prototype":{"admin":true}}}', headers: JSON_TYPE, status: 400 },
  { name: 'extra property', path: '/sessions', body: json({ userId: 'a', tickers: ['AAPL'], role: 'admin' }), headers: JSON_TYPE, status: 400 },
  { name: 'body array', path: '/sessions', body: json([{ userId: 'a', tickers: ['AAPL'] }]), headers: JSON_TYPE, status: 400 },
  { name: 'body string', path: '/sessions', body: json('hello'), headers: JSON_TYPE, status: 400 },
  { name: 'body number', path: '/sessions', body: '42', headers: JSON_TYPE, status: 400 },
  { name: 'body null', path: '/sessions', body: 'null', headers: JSON_TYPE, status: 400 },
  { name: 'body empty with JSON type', path: '/sessions', body: '', headers: JSON_TYPE, status: 400 },
  { name: 'truncated JSON', path: '/sessions', body: '{"userId":"a","tickers":["AAPL"', headers: JSON_TYPE, status: 400 },
  { name: 'JSON with trailing garbage', path: '/sessions', body: '{"userId":"a","tickers":["AAPL"]} x', headers: JSON_TYPE, status: 400 },
  { name: 'deep nesting', path: '/sessions', body: `{"userId":"a","tickers":["AAPL"],"x":${nested(2000)}}`, headers: JSON_TYPE, status: 400 },
  { name: 'invalid UTF-8', path: '/sessions', body: '{"userId":"\udc00","tickers":["AAPL"]}', headers: JSON_TYPE, status: 400 },
  { name: 'body over 16 KiB', path: '/sessions', body: json({ userId: 'a', tickers: ['AAPL'], pad: 'x'.repeat(17_000) }), headers: JSON_TYPE, status: 413 },
  // content types
  { name: 'no content type', path: '/sessions', body: json({ userId: 'a', tickers: ['AAPL'] }), status: 415 },
  { name: 'text/plain', path: '/sessions', body: json({ userId: 'a', tickers: ['AAPL'] }), headers: { 'content-type': 'text/plain' }, status: 415 },
  { name: 'form encoded', path: '/sessions', body: 'userId=a&tickers=AAPL', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
  { name: 'multipart', path: '/sessions', body: '--b\r\n\r\nx\r\n--b--', headers: { 'content-type': 'multipart/form-data; boundary=b' }, status: 415 },
  { name: 'application/jsonx', path: '/sessions', body: json({ userId: 'a', tickers: ['AAPL'] }), headers: { 'content-type': 'application/jsonx' }, status: 415 },
  { name: 'xml', path: '/sessions', body: '<a/>', headers: { 'content-type': 'application/xml' }, status: 415 },
  // params
  { name: 'unknown id', path: '/sessions/unknown' , status: 404 },
  { name: 'huge id', path: `/sessions/${'a'.repeat(1000)}`, status: 404 },
  { name: 'huge id stream', path: `/sessions/${'a'.repeat(1000)}/stream`, status: 404 },
  { name: 'id over router limit', path: `/sessions/${'a'.repeat(6000)}`, status: 404 },
  { name: 'encoded slash in id', path: '/sessions/a%2Fb/stream', status: 404 },
  { name: 'dot-dot id', path: '/sessions/..', status: 404 },
  { name: 'encoded dot-dot id', path: '/sessions/%2e%2e/stream', status: 404 },
  { name: 'bad escape in id', path: '/sessions/%E0%A4%A', status: 404 },
  { name: 'NUL in id', path: '/sessions/a%00b', status: 404 },
  { name: 'valid id, extra segment', path: (id) => `/sessions/${id}/stream/extra`, status: 404 },
  { name: 'valid id with trailing slash', path: (id) => `/sessions/${id}/`, status: 404 },
  { name: 'DELETE unknown id', method: 'DELETE', path: '/sessions/nope', status: 404 },
  // methods
  { name: 'PUT /sessions', method: 'PUT', path: '/sessions', body: '{}', headers: JSON_TYPE, status: 404 },
  { name: 'PATCH a session', method: 'PATCH', path: (id) => `/sessions/${id}`, body: '{}', headers: JSON_TYPE, status: 404 },
  { name: 'POST a stream', method: 'POST', path: (id) => `/sessions/${id}/stream`, body: '{}', headers: JSON_TYPE, status: 404 },
  { name: 'DELETE /sessions', method: 'DELETE', path: '/sessions', status: 404 },
  { name: 'GET /prices', path: '/prices', status: 404 },
  // headers on POST /prices: auth schemes and tokens
  { name: 'prices without auth', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1 }), headers: JSON_TYPE, status: 401 },
  { name: 'prices basic auth', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1 }), headers: { ...JSON_TYPE, authorization: 'Basic dG9rZW46' }, status: 401 },
  { name: 'prices token without scheme', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1 }), headers: { ...JSON_TYPE, authorization: TOKEN }, status: 401 },
  { name: 'prices bearer twice', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1 }), headers: { ...JSON_TYPE, authorization: `Bearer Bearer ${TOKEN}` }, status: 401 },
  { name: 'prices oversized token', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1 }), headers: { ...JSON_TYPE, authorization: `Bearer ${'t'.repeat(10_000)}` }, status: 401 },
  { name: 'prices price as string', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: '1' }), headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, status: 400 },
  { name: 'prices ts as string', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1, ts: 'now' }), headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, status: 400 },
  { name: 'prices body string', method: 'POST', path: '/prices', body: json('AAPL'), headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, status: 400 },
  { name: 'prices price over 8 KiB', method: 'POST', path: '/prices', body: json({ ticker: 'AAPL', price: 1, pad: 'x'.repeat(9000) }), headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, status: 400 },
  { name: 'prices __proto__', method: 'POST', path: '/prices', body: `{"ticker":"AAPL","price":1,"__proto__":{"x":1}}`, headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, status: 400 },
  // JSON.parse takes it, JSON.stringify runs out of stack on it (it was a 500)
  { name: 'prices extra field nested 200 000 deep', method: 'POST', path: '/prices', body: `{"ticker":"AAPL","price":1,"x":${nested(200_000)}}`, headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, status: 400 }
]

t.test(`${CASES.length} malformed requests: each a clear 4xx, never a 5xx, the server keeps serving`, async (t) => {
  t.ok(CASES.length >= 60, 'at least 60 cases')
  const { baseUrl } = await startApp(t, { PUBLISH_TOKEN: TOKEN })
  const session = await register(baseUrl, 'probe', ['AAPL'])
  for (const testCase of CASES) {
    const path = typeof testCase.path === 'function' ? testCase.path(session.sessionId) : testCase.path
    const res = await request(baseUrl, path, { method: testCase.method ?? (testCase.body === undefined ? 'GET' : 'POST'), body: testCase.body, headers: testCase.headers })
    t.equal(res.status, testCase.status, `${testCase.name}: ${res.status}`)
    t.ok(res.status >= 400 && res.status < 500, `${testCase.name}: a 4xx`)
    t.equal(typeof res.body, 'object', `${testCase.name}: a JSON body`)
    t.equal(res.body.statusCode, res.status, `${testCase.name}: statusCode`)
    t.type(res.body.error, 'string', `${testCase.name}: error`)
    t.type(res.body.message, 'string', `${testCase.name}: message`)
    t.notMatch(res.text, /\bat .*\.(js|ts):\d+|node_modules|\/work\//, `${testCase.name}: no stack or path`)
  }
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype pollution')
  t.equal((await request(baseUrl, '/health')).status, 200, 'still serving')
  t.equal((await request(baseUrl, `/sessions/${session.sessionId}`)).status, 200, 'nothing else was lost')
})

t.test('garbage on the wire gets a 400, not a crash', async (t) => {
  const { baseUrl } = await startApp(t)
  const url = new URL(baseUrl)
  for (const garbage of ['NOT HTTP AT ALL\r\n\r\n', 'GET /health HTTP/9.9\r\n\r\n', 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n']) {
    const socket = connect(Number(url.port), url.hostname)
    let answer = ''
    socket.on('data', (chunk) => { answer += chunk.toString() })
    const closed = new Promise((resolve) => socket.on('close', resolve))
    socket.on('error', () => {})
    socket.write(garbage)
    await closed
    t.match(answer, /^HTTP\/1\.1 4\d\d /, `${JSON.stringify(garbage.slice(0, 20))}: a 4xx`)
  }
  t.equal((await request(baseUrl, '/health')).status, 200, 'still serving')
})
