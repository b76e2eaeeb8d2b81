import { readlinkSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { addExtraAcceptors } from '../src/extra-acceptors.js'
import { silentLogger } from '../src/logger.js'
import { descriptorsFor } from './helpers/descriptors.js'

/** The listening socket of `server`, as /proc names it (`socket:[inode]`). */
function socketOf (server: http.Server): string {
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  return readlinkSync(`/proc/self/fd/${fd}`)
}

/** How many of this process's descriptors refer to `server`'s listening socket. */
function descriptorsOf (server: http.Server): number {
  return descriptorsFor(socketOf(server))
}

async function listeningServer (t: Test): Promise<{ server: http.Server, port: number }> {
  const server = http.createServer((request, response) => {
    request.resume()
    response.end(String(request.socket.remotePort))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 16, resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { server, port: (server.address() as AddressInfo).port }
}

/** One request on a connection of its own. */
async function getOnNewConnection (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

t.test('the listening socket gets more descriptors, and connections they accept are served by the HTTP server', async (t) => {
  const { server, port } = await listeningServer(t)
  t.equal(descriptorsOf(server), 1, 'one descriptor before')
  const acceptors = await addExtraAcceptors(server, { count: 8, backlog: 16, logger: silentLogger })
  t.teardown(async () => { await acceptors.stopAccepting() })
  t.equal(acceptors.count, 8)
  t.equal(descriptorsOf(server), 9, 'the same socket behind nine descriptors')

  // Every descriptor is ready for each connection; which one accepts is the event loop's
  // choice, so enough connections are made for the copies to take some.
  const answers = await Promise.all(Array.from({ length: 60 }, async () => await getOnNewConnection(port)))
  t.equal(answers.length, 60)
  t.ok(answers.every((answer) => /^\d+$/.test(answer)), 'every request answered by the HTTP server')
  t.ok(acceptors.accepted > 0, `${acceptors.accepted} of 60 connections accepted on the extra descriptors`)
})

t.test('stopAccepting closes the extra descriptors; closed waits for their connections; the server accepts on', async (t) => {
  const { server, port } = await listeningServer(t)
  const acceptors = await addExtraAcceptors(server, { count: 4, backlog: 16, logger: silentLogger })
  // A keep-alive connection per descriptor stays open until the end.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 })
  const requests = Array.from({ length: 50 }, async () => await new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, agent }, (response) => { response.resume(); response.on('end', resolve) }).on('error', reject)
  }))
  await Promise.all(requests)
  t.ok(acceptors.accepted > 0, 'some connections were accepted on the extra descriptors')

  let closed = false
  const closing = acceptors.stopAccepting().then(() => { closed = true })
  t.equal(acceptors.stopAccepting(), acceptors.stopAccepting(), 'a second call returns the same promise')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(descriptorsOf(server), 1, 'only the server\'s own descriptor is left')
  t.equal(closed, false, 'their keep-alive connections are still open')

  agent.destroy()
  await closing
  t.equal(closed, true, 'closed once their connections ended')
  t.match(await getOnNewConnection(port), /^\d+$/, 'the server still accepts on its own descriptor')
})

t.test('a server that does not listen gets no extra descriptors', async (t) => {
  const server = http.createServer()
  const acceptors = await addExtraAcceptors(server, { count: 4, backlog: 16, logger: silentLogger })
  t.equal(acceptors.count, 0)
  await acceptors.stopAccepting()
  t.equal(acceptors.accepted, 0)
})

t.test('a helper that does not answer in time: the server goes on with what it has, and says so', async (t) => {
  const { server, port } = await listeningServer(t)
  const warnings: Array<{ context: object, message: string }> = []
  // A recording logger: the warning is what an operator would see.
  const logger = { ...silentLogger, warn: (context: object | string, message?: string) => { if (typeof context === 'object') warnings.push({ context, message: message ?? '' }) } }
  const acceptors = await addExtraAcceptors(server, { count: 8, backlog: 16, logger, helperTimeoutMs: 0 })
  t.teardown(async () => { await acceptors.stopAccepting() })
  t.ok(acceptors.count < 8, `${acceptors.count} of 8 added`)
  t.equal(warnings.length, 1)
  t.equal(warnings[0]?.message, 'could not add all extra acceptors')
  t.match(warnings[0]?.context, { wanted: 8, added: acceptors.count, err: { message: /helper returned \d+ of 8 handles in 0 ms/ } })
  t.match(await getOnNewConnection(port), /^\d+$/, 'the server still serves')
})

/** Node's own flag for "TCP_NODELAY was set on this socket" (net.js kSetNoDelay). */
function noDelayIsSet (socket: Socket): boolean {
  const flag = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'kSetNoDelay')
  return flag !== undefined && (socket as unknown as Record<symbol, unknown>)[flag] === true
}

t.test('connections on the extra descriptors get the HTTP server\'s socket options: Nagle off, half-open allowed', async (t) => {
  const { server, port } = await listeningServer(t)
  const extra: Socket[] = []
  const own: Socket[] = []
  server.on('connection', (socket: Socket) => {
    // net.js records the accepting server on `_server`; http.js then sets `server`.
    if ((socket as unknown as { _server: unknown })._server === server) own.push(socket)
    else extra.push(socket)
  })
  const acceptors = await addExtraAcceptors(server, { count: 8, backlog: 16, logger: silentLogger })
  t.teardown(async () => { await acceptors.stopAccepting() })
  await Promise.all(Array.from({ length: 40 }, async () => await getOnNewConnection(port)))
  t.ok(extra.length > 0, `${extra.length} connections on extra descriptors`)
  t.ok(extra.every(noDelayIsSet), 'TCP_NODELAY on every one, as on the server\'s own')
  t.ok(own.every(noDelayIsSet), 'and on the server\'s own (the reference)')
  t.ok(extra.every((socket) => socket.allowHalfOpen === (server as unknown as Socket).allowHalfOpen), 'allowHalfOpen like the server\'s')
})

t.test('a server that closes during the helper\'s round trip gets no acceptors: nothing accepts after it', async (t) => {
  const { server } = await listeningServer(t)
  const socket = socketOf(server)
  const adding = addExtraAcceptors(server, { count: 8, backlog: 16, logger: silentLogger })
  server.close()
  const acceptors = await adding
  t.equal(acceptors.count, 0)
  t.equal(descriptorsFor(socket), 0, 'the copies that came back were closed: this process holds none of the socket')
})
