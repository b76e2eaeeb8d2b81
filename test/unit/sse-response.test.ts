import { once } from 'node:events'
import { createServer, type OutgoingHttpHeaders } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { responseHead, startSseResponse } from '../../src/stream/sse-response.js'

/** A real HTTP server whose one route starts an SSE response with `hookHeaders`, writes one event and ends. */
async function rawResponseTo (t: Test, hookHeaders: OutgoingHttpHeaders): Promise<string> {
  const server = createServer((_req, res) => {
    const sink = startSseResponse(res, hookHeaders)
    sink.write('event: snapshot\ndata: {}\n\n')
    sink.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1')
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  await once(socket, 'end')
  socket.destroy()
  return received
}

t.test('the head goes straight to the socket: status, hook headers, SSE headers, Connection: close', async (t) => {
  const raw = await rawResponseTo(t, { 'x-request-id': 'req-1', 'x-ratelimit-limit': 10 })
  const [head = '', body] = raw.split('\r\n\r\n')
  const lines = head.split('\r\n')
  t.equal(lines[0], 'HTTP/1.1 200 OK')
  t.ok(lines.includes('x-request-id: req-1'), 'a hook header goes out')
  t.ok(lines.includes('x-ratelimit-limit: 10'), 'a numeric hook header goes out as text')
  t.ok(lines.includes('content-type: text/event-stream'))
  t.ok(lines.includes('cache-control: no-cache'))
  t.ok(lines.includes('x-accel-buffering: no'))
  t.ok(lines.includes('connection: close'))
  t.ok(lines.some((line) => /^date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(line)), 'an HTTP date')
  t.equal(body, 'event: snapshot\ndata: {}\n\n', 'the event follows unframed (no chunk sizes)')
})

t.test('framing headers from hooks are dropped; the SSE headers win over a hook\'s', async (t) => {
  const raw = await rawResponseTo(t, { 'Content-Length': '5', 'transfer-encoding': 'chunked', connection: 'keep-alive', 'Content-Type': 'text/html', 'Cache-Control': 'max-age=60' })
  const head = (raw.split('\r\n\r\n')[0] ?? '').toLowerCase()
  t.notMatch(head, /content-length/)
  t.notMatch(head, /transfer-encoding/)
  t.equal(head.match(/^connection:/gm)?.length, 1, 'one connection header')
  t.match(head, /^connection: close$/m)
  t.equal(head.match(/^content-type:/gm)?.length, 1, 'one content type')
  t.match(head, /^content-type: text\/event-stream$/m)
  t.equal(head.match(/^cache-control:/gm)?.length, 1, 'one cache-control, whatever the hook\'s spelling')
  t.match(head, /^cache-control: no-cache$/m)
})

t.test('responseHead validates like writeHead: no CR/LF injection, no invalid names', async (t) => {
  t.throws(() => responseHead({ 'x-bad': 'a\r\nset-cookie: evil=1' }), { code: 'ERR_INVALID_CHAR' })
  t.throws(() => responseHead({ 'bad name': 'x' }), { code: 'ERR_INVALID_HTTP_TOKEN' })
})

t.test('responseHead repeats a header given as a list and skips undefined values', async (t) => {
  const head = responseHead({ 'x-multi': ['one', 'two'], 'x-none': undefined })
  t.match(head, /x-multi: one\r\nx-multi: two\r\n/)
  t.notMatch(head, /x-none/)
  t.ok(head.endsWith('connection: close\r\n\r\n'))
})
