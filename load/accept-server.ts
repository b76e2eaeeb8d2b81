import http from 'node:http'
import { addExtraAcceptors, LISTEN_BACKLOG } from '../src/extra-acceptors.js'
import { silentLogger } from '../src/logger.js'

/**
 * The accept-cost run's server (load/accept-cost.ts), forked: a plain HTTP server that answers
 * every request with a two-byte body, on a socket with `process.argv[2]` extra accept
 * descriptors (src/extra-acceptors.ts). The cheapest request there is, so that the accept
 * path's share of each connection's CPU is as large as it gets.
 *
 * It tells its parent `{ port, extraAcceptors }` once it listens, and exits when the parent
 * disconnects.
 */
export interface AcceptServerListening {
  port: number
  extraAcceptors: number
}

async function main (): Promise<void> {
  const extra = Number(process.argv[2] ?? '0')
  const server = http.createServer((_req, res) => { res.end('ok') })
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: LISTEN_BACKLOG }, resolve))
  const acceptors = await addExtraAcceptors(server, { count: extra, backlog: LISTEN_BACKLOG, logger: silentLogger })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const listening: AcceptServerListening = { port: address.port, extraAcceptors: acceptors.count }
  process.send?.(listening)
  process.once('disconnect', () => process.exit(0))
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
