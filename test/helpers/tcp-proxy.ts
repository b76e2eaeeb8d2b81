import { once } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { Test } from 'tap'

export interface TcpProxy {
  /** `redis://` URL of the proxy, for REDIS_URL. */
  url: string
  /** From now on, what clients send is dropped: a server that is connected but never answers. */
  stopForwarding: () => void
  /** Closes the listener and every connection through it: the server is gone. */
  down: () => Promise<void>
  /** Listens again on the same port, forwarding as before. */
  up: () => Promise<void>
}

/**
 * A TCP proxy in front of the shared Redis, for the failures Redis itself cannot be asked to
 * show without disturbing other tests: an outage of this client's connections only, and a
 * Redis that stays connected but answers nothing. Closed at teardown.
 */
export async function tcpProxy (t: Test, targetPort = 6379): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let forwarding = true
  let server: Server | undefined
  let port = 0

  const listen = async (): Promise<void> => {
    const listening = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      sockets.add(client)
      sockets.add(upstream)
      client.on('data', (chunk) => { if (forwarding) upstream.write(chunk) })
      upstream.pipe(client)
      const close = (): void => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      for (const socket of [client, upstream]) {
        socket.on('error', close)
        socket.on('close', close)
      }
    })
    listening.listen(port, '127.0.0.1')
    await once(listening, 'listening')
    const address = listening.address()
    if (address === null || typeof address === 'string') throw new Error('proxy has no port')
    port = address.port
    server = listening
  }

  const down = async (): Promise<void> => {
    const listening = server
    server = undefined
    forwarding = true
    for (const socket of sockets) socket.destroy()
    sockets.clear()
    if (listening !== undefined) await new Promise<void>((resolve) => listening.close(() => resolve()))
  }

  await listen()
  t.teardown(down)
  return { url: `redis://127.0.0.1:${port}`, stopForwarding: () => { forwarding = false }, down, up: listen }
}
