import t from 'tap'
import { startApp } from './helpers/app.js'
import { request } from './helpers/http.js'

t.test('GET /health answers ok while the process serves', async (t) => {
  const { baseUrl } = await startApp(t)
  const res = await request(baseUrl, '/health')
  t.equal(res.status, 200)
  t.same(res.body, { status: 'ok' })
})

t.test('GET /ready is 200 in embedded mode and 503 once draining', async (t) => {
  const { app, baseUrl } = await startApp(t)
  const ready = await request(baseUrl, '/ready')
  t.equal(ready.status, 200)
  await app.drain(1000)
  const draining = await request(baseUrl, '/ready')
  t.equal(draining.status, 503)
  t.equal(draining.body.error, 'Service Unavailable')
})
