import { once } from 'node:events'
import { createServer, connect, type Socket } from 'node:net'
import type { Test } from 'tap'
import { SHARED_REDIS_URL } from './redis.js'

export interface TcpProxy {
  /** `redis://` URL of the proxy, for REDIS_URL. */
  url: string
  /** From now on, what clients send is dropped: a server that is connected but never answers. */
  stopForwarding: () => void
  /** Resolves when the proxy next drops something a client sent (after `stopForwarding`). */
  nextDrop: () => Promise<void>
  /**
   * Closes every connection through the proxy (the client sees its connection drop) and
   * holds new ones, connected but unanswered, until `release`.
   */
  cutConnections: () => void
  /** Connects the held connections, and every later one, to the server, forwarding both ways. */
  release: () => void
}

/**
 * A TCP proxy in front of the shared Redis, for the failures Redis itself cannot be asked to
 * show without disturbing other tests: this client's connections dropped, and a Redis that
 * stays connected but answers nothing. Closed at teardown.
 */
export async function tcpProxy (t: Test, target = new URL(SHARED_REDIS_URL)): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let forwarding = true
  let holding = false
  const held: Socket[] = []
  const dropWaiters: Array<() => void> = []

  const bridge = (client: Socket): void => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    sockets.add(upstream)
    client.on('data', (chunk) => {
      if (forwarding) upstream.write(chunk)
      else for (const resolve of dropWaiters.splice(0)) resolve()
    })
    // A client's FIN is passed on while forwarding; a Redis that answers nothing does not
    // answer that either, so the client's side stays half-closed until it gives up.
    client.on('end', () => { if (forwarding) upstream.end() })
    upstream.pipe(client)
    const close = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    upstream.on('error', close)
    upstream.on('close', close)
    client.on('close', close)
  }

  // allowHalfOpen: Node would otherwise answer a client's FIN by itself (see 'end' above).
  const server = createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client)
    client.on('error', () => client.destroy())
    if (holding) held.push(client)
    else bridge(client)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')

  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    url: `redis://127.0.0.1:${address.port}`,
    stopForwarding: () => { forwarding = false },
    nextDrop: async () => { await new Promise<void>((resolve) => dropWaiters.push(resolve)) },
    cutConnections: () => {
      holding = true
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    },
    release: () => {
      holding = false
      forwarding = true
      for (const client of held.splice(0)) if (!client.destroyed) bridge(client)
    }
  }
}
