import { readdirSync, readlinkSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { addExtraAcceptors } from '../src/extra-acceptors.js'
import { silentLogger } from '../src/logger.js'

/** How many of this process's descriptors refer to `server`'s listening socket. */
function descriptorsOf (server: http.Server): number {
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd
  const socket = readlinkSync(`/proc/self/fd/${fd}`)
  return readdirSync('/proc/self/fd').filter((entry) => {
    try {
      return readlinkSync(`/proc/self/fd/${entry}`) === socket
    } catch {
      return false // closed between the listing and the read
    }
  }).length
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
  t.teardown(() => acceptors.stopAccepting())
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

  acceptors.stopAccepting()
  acceptors.stopAccepting() // idempotent
  let closed = false
  const closing = acceptors.closed.then(() => { closed = true })
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
  acceptors.stopAccepting()
  await acceptors.closed
  t.equal(acceptors.accepted, 0)
})

t.test('a helper that does not answer in time: the server goes on with what it has, and says so', async (t) => {
  const { server, port } = await listeningServer(t)
  const warnings: Array<{ context: object, message: string }> = []
  // A recording logger: the warning is what an operator would see.
  const logger = { ...silentLogger, warn: (context: object | string, message?: string) => { if (typeof context === 'object') warnings.push({ context, message: message ?? '' }) } }
  const acceptors = await addExtraAcceptors(server, { count: 8, backlog: 16, logger, helperTimeoutMs: 0 })
  t.teardown(() => acceptors.stopAccepting())
  t.ok(acceptors.count < 8, `${acceptors.count} of 8 added`)
  t.equal(warnings.length, 1)
  t.equal(warnings[0]?.message, 'could not add all extra acceptors')
  t.match(warnings[0]?.context, { wanted: 8, added: acceptors.count, err: { message: /helper returned \d+ of 8 handles in 0 ms/ } })
  t.match(await getOnNewConnection(port), /^\d+$/, 'the server still serves')
})
