import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import type { Logger } from './logger.js'

/**
 * More accept() calls per event-loop turn, for a server that listens on one socket.
 *
 * Why: Node 20's libuv accepts ONE connection per loop turn (libuv PR #3696, "don't accept()
 * connections in a loop"). Under load a turn serves every busy connection first, so at 1500
 * busy connections a turn lasts 100-200 ms and the accept queue drains at a few connections a
 * second: under a flat load of 1500 connections, two thirds of them sat in the kernel's queue,
 * the last for the whole 25 s run, with nothing read from them (BENCHMARKS.md, "The accept queue").
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
 * The accept backlog of the listening socket and of each copy (capped by the kernel's
 * net.core.somaxconn, 4096 here). A connection burst (1500 clients at once in the registration
 * load run) overflows Node's default of 511; dropped SYNs come back only after 1 s and 3 s retries.
 */
export const LISTEN_BACKLOG = 4096

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
  /**
   * Stops accepting on them (the server's own descriptor goes on until the server closes).
   * Resolves once every connection they accepted has ended; a second call returns the same.
   */
  stopAccepting(): Promise<void>
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

/** What Node keeps on a `net.Server` (and so on an `http.Server`) besides its public API. */
interface ServerInternals {
  _handle?: object | null
  allowHalfOpen: boolean
  noDelay: boolean
  keepAlive: boolean
  /** Seconds: the constructor's option is in milliseconds. */
  keepAliveInitialDelay: number
  highWaterMark?: number
  pauseOnConnect: boolean
}

/**
 * The socket options `server` gives the connections it accepts, for an acceptor to give the
 * same: an HTTP server turns Nagle off (`noDelay`) and keeps sockets half-open, where a plain
 * `net.Server` does neither. (A first version missed this: a response written in two parts
 * waited 40 ms for the client's delayed ACK.)
 */
function socketOptionsOf (server: net.Server): net.ServerOpts {
  const internals = server as unknown as ServerInternals
  return {
    allowHalfOpen: internals.allowHalfOpen,
    noDelay: internals.noDelay,
    keepAlive: internals.keepAlive,
    keepAliveInitialDelay: internals.keepAliveInitialDelay * 1000,
    pauseOnConnect: internals.pauseOnConnect,
    ...(internals.highWaterMark === undefined ? {} : { highWaterMark: internals.highWaterMark })
  }
}

/**
 * Adds `count` descriptors to `server`'s listening socket. Never fails the caller: if the
 * helper cannot run, the server keeps its own descriptor and a warning says why.
 * Only that one socket is covered: a HOST that resolves to several addresses gets no copies
 * for the others. How many, and what they cost: `DEFAULT_ACCEPT_DESCRIPTORS` in config.ts.
 *
 * Node counts a connection on the `net.Server` that accepted it: the HTTP server's
 * `getConnections()` and `maxConnections` see only its own descriptor's. The HTTP server's
 * connection list (timeouts, `closeIdleConnections`, `closeAllConnections`) has them all.
 */
export async function addExtraAcceptors (server: net.Server, options: ExtraAcceptorOptions): Promise<ExtraAcceptors> {
  const { count, backlog, logger, helperTimeoutMs = HELPER_TIMEOUT_MS } = options
  const handle = (server as unknown as ServerInternals)._handle
  const copies = count > 0 && handle != null ? await copiesOfHandle(handle, count, helperTimeoutMs, logger) : []
  if (!server.listening) {
    // The server closed during the round trip: its copies must not accept on after it.
    for (const copy of copies) (copy as { close(): void }).close()
    copies.length = 0
  }
  let accepted = 0
  const acceptors = copies.map((copy) => {
    const acceptor = net.createServer(socketOptionsOf(server))
    acceptor.on('connection', (socket) => {
      accepted++
      server.emit('connection', socket)
    })
    // Out of descriptors (EMFILE) is not one of these: libuv accepts and closes the waiting
    // connections itself and reports nothing (measured with `ulimit -n 40`).
    acceptor.on('error', (err) => logger.error({ err }, 'extra acceptor failed'))
    acceptor.listen(copy, backlog)
    return acceptor
  })
  let closed: Promise<void> | undefined
  return {
    count: acceptors.length,
    get accepted () {
      return accepted
    },
    stopAccepting () {
      closed ??= Promise.all(acceptors.map((acceptor) => new Promise<void>((resolve) => acceptor.close(() => resolve())))).then(() => undefined)
      return closed
    }
  }
}

/** `count` new descriptors for `handle`'s socket, by the helper's round trip; fewer on failure. */
async function copiesOfHandle (handle: object, count: number, timeoutMs: number, logger: Logger): Promise<object[]> {
  const copies: object[] = []
  let helper: ChildProcess | undefined
  let timer: NodeJS.Timeout | undefined
  let gaveUp = false
  try {
    // No inherited NODE_OPTIONS (a loader, an inspector port): the helper is plain JavaScript.
    // Inside the try: spawn itself can throw (a permission model that forbids child processes).
    const child = spawn(process.execPath, ['-e', ECHO_HANDLES], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: {} })
    helper = child
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`helper returned ${copies.length} of ${count} handles in ${timeoutMs} ms`)), timeoutMs)
      child.on('error', reject)
      child.on('exit', () => reject(new Error(`helper exited after returning ${copies.length} of ${count} handles`)))
      child.on('message', (_message, copy: { close(): void } | undefined) => {
        if (copy === undefined) return
        // One arriving after we gave up would be an open descriptor nobody listens on.
        if (gaveUp) copy.close()
        else copies.push(copy)
        if (copies.length === count) resolve()
      })
      for (let index = 0; index < count; index++) {
        child.send({ last: index === count - 1 }, handle as net.Server)
      }
    })
  } catch (err) {
    gaveUp = true
    helper?.kill('SIGKILL')
    logger.warn({ err, added: copies.length, wanted: count }, 'could not add all extra acceptors')
  } finally {
    // Also when something in the executor threw before any event could clear it.
    clearTimeout(timer)
  }
  return copies
}
