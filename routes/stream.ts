import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { OutgoingHttpHeaders } from 'node:http'
import { shedUnderPressure } from '../plugins/load-shedding.js'
import { HttpError, notFound, unavailable } from './http-error.js'
import { SessionIdParams } from './schemas.js'

const SSE_HEADERS: OutgoingHttpHeaders = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // Tells nginx-style proxies not to buffer the stream.
  'x-accel-buffering': 'no',
  'x-content-type-options': 'nosniff'
}

/**
 * `GET /sessions/:id/stream`: no token, the unguessable session id is the capability (an
 * EventSource cannot send headers). The registry decides, in one synchronous step, whether
 * this response may stream; only then is the reply hijacked and the SSE headers written.
 */
const streamRoutes: FastifyPluginAsyncTypebox = async function streamRoutes (fastify) {
  const { sessions } = fastify

  fastify.get('/sessions/:id/stream', {
    // A HEAD would run this handler and use the session up without ever streaming.
    exposeHeadRoute: false,
    // The page's document headers (CSP and co.) mean nothing on an event stream, and each
    // open stream kept its own ~2 KB copy of them for its whole life.
    helmet: false,
    config: shedUnderPressure,
    schema: { params: SessionIdParams }
  }, (request, reply) => {
    const result = sessions.openStream(request.params.id, () => {
      reply.hijack()
      // Headers set by hooks so far (request id, security headers) still go out.
      const hookHeaders = reply.getHeaders() as OutgoingHttpHeaders
      // No chunked encoding: an event stream ends only by closing its connection anyway, and
      // each event then goes out as one plain write instead of a writev with chunk framing
      // (the fan-out load run's hottest path). The response says `Connection: close`.
      reply.raw.useChunkedEncodingByDefault = false
      reply.raw.writeHead(200, { ...hookHeaders, ...SSE_HEADERS })
      reply.raw.socket?.setNoDelay(true)
      return reply.raw
    })
    if (result.ok) {
      request.log.debug({ sessionId: request.params.id.slice(0, 8) }, 'stream opened')
      return
    }
    switch (result.error) {
      case 'not_found': throw notFound('session')
      case 'already_streaming': throw new HttpError(409, 'a stream is already open for this session')
      case 'shutting_down': throw unavailable('shutting down')
    }
  })
}

export default streamRoutes
