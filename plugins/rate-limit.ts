import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'

/**
 * Registrations per client IP: @fastify/rate-limit, fixed window, opted into by routes with
 * `config.rateLimit` (only `POST /sessions`). In Redis mode the counters live in Redis so the
 * limit holds across instances; if Redis errors, requests pass (the bus check answers 503).
 * `RATE_LIMIT_MAX=0` turns it off.
 */
export default fp(async function rateLimitPlugin (fastify) {
  const { config, redis } = fastify
  if (config.rateLimitMax === 0) return
  await fastify.register(rateLimit, {
    global: false,
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    ...(redis === undefined ? {} : { redis: redis.commands, nameSpace: 'tickstream:rate-limit:', skipOnError: true })
  })
}, { name: 'tickstream-rate-limit', fastify: '5.x', dependencies: ['tickstream-config', 'tickstream-redis'] })
