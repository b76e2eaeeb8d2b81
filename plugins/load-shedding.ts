import underPressure from '@fastify/under-pressure'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { unavailable } from '../routes/http-error.js'

export interface LoadSheddingOptions {
  /** Event-loop delay above which new work is refused; 0 disables the check. */
  maxEventLoopDelayMs?: number
  /** Event-loop utilization (0..1) above which new work is refused; 0 disables the check. */
  maxEventLoopUtilization?: number
  /** How often the pressure is sampled. */
  sampleIntervalMs?: number
}

type PressureHandler = (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => Promise<void> | void

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Per-route reaction of @fastify/under-pressure to an overloaded event loop. */
    pressureHandler?: PressureHandler
  }
}

/** Route config for work that may be refused under pressure: new sessions and new streams. */
export const shedUnderPressure: { pressureHandler: PressureHandler } = {
  pressureHandler: async () => { throw unavailable('server overloaded, retry shortly') }
}

/**
 * Overload protection with @fastify/under-pressure. Only *new* work is refused (routes that
 * opt in with `shedUnderPressure`); everything else, and above all the open streams, goes on:
 * cutting streams to relieve load would only make every client reconnect at once.
 */
export default fp<LoadSheddingOptions>(async function loadSheddingPlugin (fastify, options) {
  await fastify.register(underPressure, {
    // Delay is the signal: it is what every stream feels as staleness. Utilization is off by
    // default: a loop that is busy all the time but still turns quickly is doing its job
    // (the registration load run shed a third of its requests with a 98 % limit while p99
    // stayed under 10 ms). SHED_EVENT_LOOP_DELAY_MS sets the delay (default 1 s, 0 = off).
    maxEventLoopDelay: options.maxEventLoopDelayMs ?? 1000,
    maxEventLoopUtilization: options.maxEventLoopUtilization ?? 0,
    // Utilization over the last sample, not since start: the cumulative figure of a process
    // that was once busy would keep refusing work long after the load is gone.
    eventLoopUtilizationMode: 'interval',
    sampleInterval: options.sampleIntervalMs ?? 1000,
    exposeStatusRoute: false,
    // The default for every route: carry on. Opted-in routes refuse instead.
    pressureHandler: () => undefined
  })
}, { name: 'tickstream-load-shedding', fastify: '5.x' })
