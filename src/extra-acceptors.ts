import { spawn } from 'node:child_process'
import net from 'node:net'
import type { Logger } from './logger.js'

/**
 * More accept() calls per event-loop turn, for a server that listens on one socket.
 *
 * Why: Node 20's libuv accepts ONE connection per loop turn (libuv PR #3696, "don't accept()
 * connections in a loop"). Under load a turn serves every busy connection first, so at 1500
 * busy connections a turn lasts 100-200 ms and the accept queue drains at 5-10 connections a
 * second: in the registration load run, two thirds of a burst of 1500 connections sat in the
 * kernel's queue for up to 24 s with nothing read from them (BENCHMARKS.md, "The accept queue").
 *
 * How: every file descriptor of the listening socket that is in the event loop gets its own
 * accept per turn, so N descriptors accept N connections per turn. Node 20 offers neither
 * `dup()` nor `reusePort` (Node 22.12+), but a descriptor sent over an IPC channel arrives as a
 * new one: a short-lived helper process gets the socket's handle and sends it straight back,
 * `count` times. Each copy listens in a plain `net.Server` that hands its connections to the
 * HTTP server, exactly as the HTTP server's own accept would.
 *
 * The handle goes over as the raw TCP handle (`server._handle`, Node's "net.Native" transfer),
 * not as a `net.Server`: a `net.Server` would start listening in the helper, which could then
 * accept, and lose, a connection.
 */

/**
 * Descriptors for a listening socket besides the server's own. With 64 in all, a burst of 1500
 * connections on a busy server is accepted within a few seconds instead of 20 or more; an idle
 * server pays 63 failed accept() calls per new connection, some 30 us.
 */
export const EXTRA_ACCEPTORS = 63

/** The helper: returns every handle it is sent, closes its copy, leaves after the last. */
const ECHO_HANDLES = `process.on('message', (message, handle) => {
  process.send(message, handle, () => {
    handle.close()
    if (message.last) process.disconnect()
  })
})`

const HELPER_TIMEOUT_MS = 10_000

export interface ExtraAcceptors {
  /** Descriptors listening besides the server's own. */
  readonly count: number
  /** Connections they accepted and handed to the server. */
  readonly accepted: number
  /** Stops accepting on them (the server's own descriptor goes on until it closes). */
  stopAccepting(): void
  /** Resolves once they stopped and every connection they accepted has ended. */
  readonly closed: Promise<void>
}

export interface ExtraAcceptorOptions {
  /** Descriptors to add. */
  count: number
  /** The listening socket's accept backlog; listening on a copy sets it again. */
  backlog: number
  logger: Logger
  /** How long the helper may take; tests shorten it. */
  helperTimeoutMs?: number
}

interface HandleOwner { _handle?: object | null }

/**
 * Adds `count` descriptors to `server`'s listening socket. Never fails the caller: if the
 * helper cannot run, the server keeps its own descriptor and a warning says why.
 */
export async function addExtraAcceptors (server: net.Server, options: ExtraAcceptorOptions): Promise<ExtraAcceptors> {
  const { count, backlog, logger, helperTimeoutMs = HELPER_TIMEOUT_MS } = options
  const handle = (server as unknown as HandleOwner)._handle
  const copies = count > 0 && handle != null ? await copiesOfHandle(handle, count, helperTimeoutMs, logger) : []
  let accepted = 0
  const acceptors = copies.map((copy) => {
    const acceptor = net.createServer()
    acceptor.on('connection', (socket) => {
      accepted++
      server.emit('connection', socket)
    })
    acceptor.on('error', (err) => logger.error({ err }, 'extra acceptor failed'))
    acceptor.listen(copy, backlog)
    return acceptor
  })
  let stopped = false
  const closings: Array<Promise<void>> = []
  return {
    count: acceptors.length,
    get accepted () {
      return accepted
    },
    stopAccepting () {
      if (stopped) return
      stopped = true
      for (const acceptor of acceptors) closings.push(new Promise((resolve) => acceptor.close(() => resolve())))
    },
    get closed () {
      return Promise.all(closings).then(() => undefined)
    }
  }
}

/** `count` new descriptors for `handle`'s socket, by the helper's round trip; fewer on failure. */
async function copiesOfHandle (handle: object, count: number, timeoutMs: number, logger: Logger): Promise<object[]> {
  // No inherited NODE_OPTIONS (a loader, an inspector port): the helper is plain JavaScript.
  const helper = spawn(process.execPath, ['-e', ECHO_HANDLES], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: {} })
  const copies: object[] = []
  let gaveUp = false
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`helper returned ${copies.length} of ${count} handles in ${timeoutMs} ms`)), timeoutMs)
      helper.on('error', (err) => { clearTimeout(timer); reject(err) })
      helper.on('exit', () => { clearTimeout(timer); reject(new Error(`helper exited after returning ${copies.length} of ${count} handles`)) })
      helper.on('message', (_message, copy: { close(): void } | undefined) => {
        if (copy === undefined) return
        // One arriving after we gave up would be an open descriptor nobody listens on.
        if (gaveUp) copy.close()
        else copies.push(copy)
        if (copies.length === count) { clearTimeout(timer); resolve() }
      })
      for (let index = 0; index < count; index++) {
        helper.send({ last: index === count - 1 }, handle as net.Server)
      }
    })
  } catch (err) {
    gaveUp = true
    helper.kill('SIGKILL')
    logger.warn({ err, added: copies.length, wanted: count }, 'could not add all extra acceptors')
  }
  return copies
}
