import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import tickstreamApp, { serverOptions } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { addExtraAcceptors, LISTEN_BACKLOG, type ExtraAcceptors } from './extra-acceptors.js'
import { disableAllocationSitePretenuring } from './gc-tuning.js'

/** Time kept back from SHUTDOWN_GRACE_MS for closing the server after the drain. */
const CLOSE_MARGIN_MS = 250

/**
 * Signals that start the graceful shutdown, each handled here rather than by close-with-grace,
 * which exits 1 at once on any second signal: Ctrl-C on `npm start` delivers SIGINT twice (from
 * the terminal and forwarded by npm), and a terminal closed during a drain sends SIGHUP. The
 * fault signals (SIGSEGV...) stay with close-with-grace.
 */
const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const

function configOrExit (): Config {
  try {
    return loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tickstream: invalid configuration: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
}

/** The only place that listens, handles signals and exits. */
async function main (): Promise<void> {
  // Before any load: per-request objects promoted through pretenured ones (gc-tuning.ts).
  disableAllocationSitePretenuring()
  const config = configOrExit()
  const app = Fastify(serverOptions(config))
  await app.register(tickstreamApp, { config })

  let acceptors: ExtraAcceptors | undefined
  let acceptorsClosed: Promise<void> | undefined
  /** When the shutdown began; 0 until then. A signal after that is a second one. */
  const startedShutdownAt = { value: 0 }
  const shutdown = closeWithGrace({
    // The last resort (exit 1) at the contract's limit: SHUTDOWN_GRACE_MS plus a second. The
    // drain ends CLOSE_MARGIN_MS before the grace period, the HTTP server is closed by its
    // end, and Redis' QUIT gets at most a quarter of a second after that (plugins/redis.ts).
    delay: config.shutdownGraceMs + 1000,
    logger: app.log,
    skip: [...SHUTDOWN_SIGNALS]
  }, async ({ signal, err }) => {
    // Set by the signal handler below, or now, when close-with-grace began it (an uncaught error).
    if (startedShutdownAt.value === 0) startedShutdownAt.value = Date.now()
    acceptorsClosed = acceptors?.stopAccepting()
    if (err !== undefined) app.log.error({ err }, 'fatal error, shutting down')
    else app.log.info({ signal }, 'shutting down')
    await app.drain(Math.max(0, config.shutdownGraceMs - CLOSE_MARGIN_MS))
    // Streams are gone; any other request still in flight (a body still uploading, a reply
    // nobody reads) gets what is left of the grace period, then its connection is closed.
    const remainingMs = Math.max(0, config.shutdownGraceMs - (Date.now() - startedShutdownAt.value))
    const forceClose = setTimeout(() => app.server.closeAllConnections(), remainingMs)
    try {
      // The extra acceptors' connections are the HTTP server's too, but Node counts them on
      // the acceptor that took them: they are waited for here, under the same deadline.
      await Promise.all([app.close(), acceptorsClosed])
    } finally {
      clearTimeout(forceClose)
    }
  })
  for (const signal of SHUTDOWN_SIGNALS) {
    process.on(signal, () => {
      if (startedShutdownAt.value > 0) {
        app.log.warn({ signal }, 'already shutting down')
        return
      }
      startedShutdownAt.value = Date.now()
      app.log.info({ signal }, 'signal received')
      void shutdown.close()
    })
  }

  if (config.publishToken === undefined) app.log.info('POST /prices disabled (PUBLISH_TOKEN unset)')
  try {
    await app.listen({ host: config.host, port: config.port, backlog: LISTEN_BACKLOG })
  } catch (err) {
    // A port in use or a host that does not resolve: name the settings an operator changes.
    throw new Error(`cannot listen on HOST=${config.host} PORT=${config.port}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  acceptors = await addExtraAcceptors(app.server, { count: config.acceptDescriptors - 1, backlog: LISTEN_BACKLOG, logger: app.log })
  // A shutdown that began during the helper's round trip found no acceptors to stop.
  if (startedShutdownAt.value > 0) acceptorsClosed = acceptors.stopAccepting()
  app.log.debug({ extraAcceptors: acceptors.count }, 'accepting on extra descriptors')
}

main().catch((err: unknown) => {
  process.stderr.write(`tickstream: failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
