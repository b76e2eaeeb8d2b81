import type { Test } from 'tap'
import { register, request } from './http.js'
import { SseClient } from './sse-client.js'

/**
 * A stream whose client stopped reading, with its socket filled so that its `end` event
 * cannot be delivered: it holds a drain until the deadline. The server must have been
 * started with `PUBLISH_TOKEN=tok`.
 */
export async function stuckStream (baseUrl: string, t: Test, tickers = Array.from({ length: 40 }, (_, i) => `T${i}`)): Promise<SseClient> {
  const session = await register(baseUrl, 'stuck', tickers)
  const stuck = await SseClient.open(baseUrl, session.streamUrl)
  await stuck.next()
  stuck.pause()
  const pad = 'x'.repeat(6000)
  for (let i = 0; i < 60; i++) {
    const res = await request(baseUrl, '/prices', { method: 'POST', headers: { authorization: 'Bearer tok' }, body: tickers.map((ticker) => ({ ticker, price: i, pad })) })
    t.equal(res.status, 202)
  }
  return stuck
}
