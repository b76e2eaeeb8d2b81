import fp from 'fastify-plugin'

/**
 * `X-Content-Type-Options: nosniff` on every response, so a browser never reads the API's
 * JSON (or an error body) as anything but what its Content-Type says. The page's own routes
 * get helmet's full document set on top (page.ts). One synchronous hook with a constant:
 * it runs on the hottest route, `POST /sessions`.
 */
export default fp(async function apiHeadersPlugin (fastify) {
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.header('x-content-type-options', 'nosniff')
    done()
  })
}, { name: 'tickstream-api-headers', fastify: '5.x' })
