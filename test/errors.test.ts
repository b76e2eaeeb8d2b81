import t from 'tap'
import { startApp } from './helpers/app.js'
import { request } from './helpers/http.js'

t.test('an internal error is a bare 500 for the client and a full log line for the operator', async (t) => {
  const lines: string[] = []
  const { baseUrl } = await startApp(t, {}, {
    logLines: lines,
    beforeReady: (app) => {
      // A route that fails the way a bug would: the client must learn nothing from it.
      app.get('/test-only/failure', async () => { throw new Error('secret internal detail at /srv/db') })
    }
  })
  const res = await request(baseUrl, '/test-only/failure')
  t.equal(res.status, 500)
  t.same(res.body, { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  t.notMatch(res.text, /secret|srv|stack|at /, 'no internal detail')
  const logged = lines.map((line) => JSON.parse(line)).find((entry) => entry.err !== undefined)
  t.equal(logged?.level, 50, 'logged at error level')
  t.equal(logged?.err.message, 'secret internal detail at /srv/db', 'with the error')
  t.match(logged?.err.stack, /errors\.test\.ts/, 'and its stack')
  t.type(logged?.reqId, 'string', 'and the request id')
})

t.test('unknown routes are a 404 in the error shape', async (t) => {
  const { baseUrl } = await startApp(t)
  for (const [method, path] of [['GET', '/nope'], ['POST', '/sessions/x/stream'], ['PUT', '/sessions'], ['GET', '/../../etc/passwd']] as const) {
    const res = await request(baseUrl, path, { method })
    t.equal(res.status, 404, `${method} ${path}`)
    t.same(Object.keys(res.body).sort(), ['error', 'message', 'statusCode'])
    t.equal(res.body.error, 'Not Found')
  }
})
