import path from 'node:path'
import t from 'tap'
import { findPublicDir } from '../../plugins/page.js'
import { startApp } from '../helpers/app.js'
import { register, request } from '../helpers/http.js'
import { REPO_ROOT } from '../helpers/server-process.js'
import { SseClient } from '../helpers/sse-client.js'

t.test('GET / serves the page with security headers and a self-only CSP', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/')
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  const csp = String(res.headers['content-security-policy'])
  for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "object-src 'none'"]) {
    t.ok(csp.split(';').includes(directive), `CSP has ${directive}`)
  }
  t.notMatch(csp, /unsafe-inline|unsafe-eval|upgrade-insecure-requests/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  t.equal(res.headers['referrer-policy'], 'no-referrer')
  t.equal(res.headers['cross-origin-opener-policy'], 'same-origin')
  t.match(res.text, '<script type="module" src="/main.js"></script>')
  t.notMatch(res.text, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script')
  t.notMatch(res.text, /https?:\/\//, 'nothing loaded from elsewhere')
})

t.test('API responses carry nosniff and none of the page\'s document headers', async (t) => {
  const { baseUrl } = await startApp(t)
  const responses = [
    ['POST /sessions', await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'alice', tickers: ['AAPL'] } }), 201],
    ['POST /sessions (415)', await request(baseUrl, '/sessions', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }), 415],
    ['GET /health', await request(baseUrl, '/health'), 200],
    ['GET /nope', await request(baseUrl, '/nope'), 404],
    ['GET /sessions/%zz (bad escape)', await request(baseUrl, '/sessions/%zz'), 404]
  ] as const
  for (const [name, res, status] of responses) {
    t.equal(res.status, status, name)
    t.equal(res.headers['x-content-type-options'], 'nosniff', name)
    t.equal(res.headers['content-security-policy'], undefined, `${name}: no CSP`)
    t.equal(res.headers['x-frame-options'], undefined, `${name}: no frame options`)
  }
})

t.test('the page\'s scripts, styles and icon are served from public/', async (t) => {
  const { baseUrl } = await startApp(t)
  const assets: Array<[string, RegExp]> = [
    ['/main.js', /^(text|application)\/javascript/],
    ['/live-session.js', /^(text|application)\/javascript/],
    ['/price-table.js', /^(text|application)\/javascript/],
    ['/styles.css', /^text\/css/],
    ['/favicon.svg', /^image\/svg\+xml/]
  ]
  for (const [asset, contentType] of assets) {
    const res = await request(baseUrl, asset)
    t.equal(res.status, 200, asset)
    t.match(res.headers['content-type'], contentType, asset)
    t.ok(String(res.headers['content-security-policy']).includes("default-src 'self'"), `${asset} has the page's CSP`)
  }
})

t.test('unknown paths keep the JSON 404, next to the static files', async (t) => {
  const { baseUrl } = await startApp(t)
  for (const unknown of ['/nope', '/main.jsx', '/public/index.html', '/%2e%2e/package.json']) {
    const res = await request(baseUrl, unknown)
    t.equal(res.status, 404, unknown)
    t.match(res.body, { statusCode: 404, error: 'Not Found', message: String }, unknown)
  }
})

t.test('with the page security headers on, a stream still is text/event-stream and streams', async (t) => {
  const { baseUrl } = await startApp(t)
  const session = await register(baseUrl, 'alice', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  t.match(client.response.headers['content-type'], /^text\/event-stream/)
  t.equal(client.response.headers['cache-control'], 'no-cache')
  t.equal(client.response.headers['x-accel-buffering'], 'no')
  t.equal(client.response.headers['x-content-type-options'], 'nosniff')
  t.equal(client.response.headers['content-security-policy'], undefined, 'document headers stay on the page')
  const snapshot = await client.next()
  t.equal(snapshot.event, 'snapshot')
})

t.test('public/ is found from the source file and from the build in dist/', async (t) => {
  const publicDir = path.join(REPO_ROOT, 'public')
  t.equal(findPublicDir(path.join(REPO_ROOT, 'plugins')), publicDir)
  t.equal(findPublicDir(path.join(REPO_ROOT, 'dist', 'plugins')), publicDir)
})
