import t from 'tap'
import { startApp } from './helpers/app.js'
import { request } from './helpers/http.js'
import { nowSeconds, signJwt } from './helpers/jwt.js'
import { SseClient } from './helpers/sse-client.js'

const SECRET = 'test-jwt-secret-of-reasonable-length'
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const tokenFor = (sub: unknown, extra: Record<string, unknown> = {}): string => signJwt({ sub, iat: nowSeconds(), ...extra }, SECRET)

async function registerAs (baseUrl: string, token: string, body: Record<string, unknown>): Promise<Awaited<ReturnType<typeof request>>> {
  return await request(baseUrl, '/sessions', { method: 'POST', body, headers: bearer(token) })
}

t.test('with JWT_SECRET the user is the token subject', async (t) => {
  const { baseUrl } = await startApp(t, { JWT_SECRET: SECRET })
  const withoutUserId = await registerAs(baseUrl, tokenFor('alice'), { tickers: ['AAPL'] })
  t.equal(withoutUserId.status, 201, 'userId may be left out')
  t.equal(withoutUserId.body.userId, 'alice')
  const sameUserId = await registerAs(baseUrl, tokenFor('alice'), { userId: 'alice', tickers: ['AAPL'] })
  t.equal(sameUserId.status, 201, 'a userId equal to sub is fine')
  const otherUserId = await registerAs(baseUrl, tokenFor('alice'), { userId: 'mallory', tickers: ['AAPL'] })
  t.equal(otherUserId.status, 403, 'a different userId is a 403')
  t.equal(otherUserId.body.error, 'Forbidden')
})

t.test('missing, malformed, forged, expired or subject-less tokens are a 401', async (t) => {
  const { baseUrl } = await startApp(t, { JWT_SECRET: SECRET })
  const cases: Array<[string, Record<string, string>]> = [
    ['no authorization header', {}],
    ['not a bearer scheme', { authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` }],
    ['bearer without a token', { authorization: 'Bearer ' }],
    ['garbage token', bearer('not.a.jwt')],
    ['wrong secret', bearer(signJwt({ sub: 'alice' }, 'another-secret'))],
    ['alg none', bearer(signJwt({ sub: 'alice' }, SECRET, 'none'))],
    ['HS512 instead of HS256', bearer(signJwt({ sub: 'alice' }, SECRET, 'HS512'))],
    ['expired', bearer(tokenFor('alice', { exp: nowSeconds() - 60 }))],
    ['not yet valid', bearer(tokenFor('alice', { nbf: nowSeconds() + 3600 }))],
    ['no sub', bearer(signJwt({ name: 'alice' }, SECRET))],
    ['numeric sub', bearer(tokenFor(42))],
    ['object sub', bearer(tokenFor({ id: 'alice' }))],
    ['oversized token', bearer('a'.repeat(8000))]
  ]
  for (const [name, headers] of cases) {
    const res = await request(baseUrl, '/sessions', { method: 'POST', body: { tickers: ['AAPL'] }, headers })
    t.equal(res.status, 401, name)
    t.equal(res.body.error, 'Unauthorized', `${name}: error shape`)
    t.equal(res.headers['www-authenticate'], 'Bearer', `${name}: www-authenticate`)
  }
})

t.test("reading or deleting another user's session is a 404; one's own works", async (t) => {
  const { baseUrl } = await startApp(t, { JWT_SECRET: SECRET })
  const alice = tokenFor('alice')
  const bob = tokenFor('bob')
  const created = await registerAs(baseUrl, alice, { tickers: ['AAPL'] })
  const path = `/sessions/${String(created.body.sessionId)}`
  t.equal((await request(baseUrl, path)).status, 401, 'GET without a token')
  t.equal((await request(baseUrl, path, { method: 'DELETE' })).status, 401, 'DELETE without a token')
  t.equal((await request(baseUrl, path, { headers: bearer(bob) })).status, 404, "GET of another user's session")
  t.equal((await request(baseUrl, path, { method: 'DELETE', headers: bearer(bob) })).status, 404, "DELETE of another user's session")
  const own = await request(baseUrl, path, { headers: bearer(alice) })
  t.equal(own.status, 200)
  t.equal(own.body.userId, 'alice')
  t.equal((await request(baseUrl, path, { method: 'DELETE', headers: bearer(alice) })).status, 204)
})

t.test('the stream needs no token: the session id is the capability', async (t) => {
  const { baseUrl } = await startApp(t, { JWT_SECRET: SECRET })
  const created = await registerAs(baseUrl, tokenFor('alice'), { tickers: ['AAPL'] })
  const client = await SseClient.open(baseUrl, String(created.body.streamUrl))
  t.teardown(() => client.close())
  t.equal(client.status, 200)
  t.equal((await client.next()).event, 'snapshot')
})

t.test('without JWT_SECRET the service runs open and says so at start', async (t) => {
  const lines: string[] = []
  const { baseUrl } = await startApp(t, {}, { logLines: lines })
  t.ok(lines.some((line) => line.includes('"level":40') && line.includes('JWT_SECRET unset')), 'a warning is logged')
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: { userId: 'anyone', tickers: ['AAPL'] } })
  t.equal(res.status, 201)
})
