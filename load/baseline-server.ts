import Fastify from 'fastify'
import { silentLogger } from '../src/logger.js'
import { addExtraAcceptors, EXTRA_ACCEPTORS } from '../src/extra-acceptors.js'
import { RegisterBody, RegisteredSessionBody } from '../routes/schemas.js'
import { bareRegistration } from './lib/bare-registration.js'

/**
 * The registration baseline: a bare Fastify route with the same body schema and the same
 * response shape as `POST /sessions`, and none of the service behind it (no registry, no
 * bus, no rate limit, no auth). The gap to it is what tickstream's own work costs.
 */
const app = Fastify({ logger: false, bodyLimit: 16 * 1024, ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } })

app.get('/health', async () => ({ status: 'ok' }))

app.post('/sessions', { schema: { body: RegisterBody, response: { 201: RegisteredSessionBody } } }, bareRegistration)

// The same accept backlog and the same extra descriptors as tickstream's server.ts, so a
// connection burst treats both alike (BENCHMARKS.md, "The accept queue").
await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0), backlog: 4096 })
// A shortfall is printed: a baseline with fewer descriptors than tickstream is not a fair one.
const warnOnStderr = (context: object | string, message?: string): void => { process.stderr.write(`baseline-server: ${message ?? String(context)} ${JSON.stringify(context)}\n`) }
const acceptors = await addExtraAcceptors(app.server, { count: EXTRA_ACCEPTORS, backlog: 4096, logger: { ...silentLogger, warn: warnOnStderr, error: warnOnStderr } })

// A clean exit on SIGTERM (how the load runs stop it), so a `--cpu-prof` profile gets written.
process.once('SIGTERM', () => {
  void acceptors.stopAccepting()
  void app.close().then(() => process.exit(0))
})
