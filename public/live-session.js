// The connection side of the page: register a session, stream it, register again when the
// stream ends or breaks. Knows nothing about the DOM; main.js renders what it reports.

const FIRST_RETRY_MS = 500
const MAX_RETRY_MS = 30_000
const SHUTDOWN_SPREAD_MIN_MS = 1000
const SHUTDOWN_SPREAD_MS = 4000

/**
 * Exponential back-off with "equal jitter": half of the delay is fixed, half random. Every
 * page a server shutdown ends retries at once otherwise; the random half spreads them out,
 * the fixed half keeps any of them from hammering a server that is still down.
 */
export function retryDelayMs (attempt, random = Math.random) {
  const ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1))
  return ceiling / 2 + random() * (ceiling / 2)
}

/** `retry-after` in seconds (what a 429 or 503 carries), as milliseconds; 0 when absent. */
function retryAfterMs (response) {
  const seconds = Number(response.headers.get('retry-after'))
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0
}

/**
 * One person watching a set of tickers. Reports through the handlers:
 * - onState({ name, ... }): 'connecting' | 'live' | 'reconnecting' | 'evicted' | 'failed' | 'stopped';
 *   'reconnecting' carries the attempt, and, while waiting for it, its delay and what went wrong
 * - onSession(session): the `201` body of `POST /sessions`, once per registration
 * - onSnapshot(prices), onPrices(prices): the stream's events
 * - onEnd(reason): an `end` event's reason, or 'connection_lost'
 */
export class LiveSession {
  #handlers
  #request
  #source
  #retryTimer
  #failedAttempts = 0
  // Bumped by start() and stop(): a registration still in flight from an abandoned attempt
  // sees that it is stale and does nothing.
  #generation = 0

  constructor (handlers) {
    this.#handlers = handlers
  }

  /** Starts watching `{ userId, tickers }`, abandoning whatever was running. */
  start (request) {
    this.#abandon()
    this.#request = request
    this.#failedAttempts = 0
    void this.#register()
  }

  /** After an eviction: the person asked to take a slot back, which evicts their oldest other session. */
  reconnect () {
    if (this.#request !== undefined) this.start(this.#request)
  }

  stop () {
    this.#abandon()
    this.#handlers.onState({ name: 'stopped' })
  }

  #abandon () {
    this.#generation++
    this.#closeStream()
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  #closeStream () {
    this.#source?.close()
    this.#source = undefined
  }

  async #register () {
    const generation = this.#generation
    // Through an outage the status stays "reconnecting", attempt after attempt.
    if (this.#failedAttempts === 0) this.#handlers.onState({ name: 'connecting' })
    else this.#handlers.onState({ name: 'reconnecting', attempt: this.#failedAttempts })
    let response
    let body
    try {
      response = await fetch('/sessions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(this.#request)
      })
      body = await response.json().catch(() => ({}))
    } catch {
      if (generation === this.#generation) this.#retryLater('the server cannot be reached')
      return
    }
    if (generation !== this.#generation) return
    if (response.status === 201) {
      this.#openStream(body)
      return
    }
    const message = typeof body.message === 'string' ? body.message : `HTTP ${response.status}`
    // Busy, rate limited or shutting down will pass; a rejected name or ticker will not.
    if (response.status === 429 || response.status >= 500) {
      this.#retryLater(message, retryAfterMs(response))
    } else {
      this.#handlers.onState({ name: 'failed', message })
    }
  }

  #openStream (session) {
    this.#handlers.onSession(session)
    const source = new EventSource(session.streamUrl)
    this.#source = source
    const current = () => source === this.#source

    source.addEventListener('snapshot', (event) => {
      if (!current()) return
      this.#failedAttempts = 0
      this.#handlers.onSnapshot(JSON.parse(event.data).prices)
      this.#handlers.onState({ name: 'live', session })
    })
    source.addEventListener('prices', (event) => {
      if (current()) this.#handlers.onPrices(JSON.parse(event.data).prices)
    })
    source.addEventListener('end', (event) => {
      if (!current()) return
      // The session is over. Left open, EventSource would reconnect to it on its own and get
      // a 404, so the page closes it and decides itself what comes next.
      this.#closeStream()
      const { reason } = JSON.parse(event.data)
      this.#handlers.onEnd(reason)
      // Taking the slot back automatically would evict another tab of the same person,
      // which would then do the same: eviction waits for a click.
      if (reason === 'evicted') this.#handlers.onState({ name: 'evicted' })
      // A shutdown ends every page of the instance at once: wait a spread of seconds (as the
      // server's own `retry:` hint does) so they do not all come back together.
      else if (reason === 'shutdown') this.#retryLater('the server is restarting', SHUTDOWN_SPREAD_MIN_MS + Math.random() * SHUTDOWN_SPREAD_MS)
      else this.#retryLater(`the session ended (${reason})`)
    })
    // Connection lost, or a 404/503 when EventSource tried to reconnect by itself: the session
    // cannot be relied on any more, so register a new one.
    source.addEventListener('error', () => {
      if (!current()) return
      this.#closeStream()
      this.#handlers.onEnd('connection_lost')
      this.#retryLater('the connection was lost')
    })
  }

  #retryLater (cause, atLeastMs = 0) {
    this.#failedAttempts++
    // Jitter on top of any floor (a retry-after, a shutdown spread): a floor alone would
    // line every page up on the same instant.
    const delayMs = atLeastMs + retryDelayMs(this.#failedAttempts)
    this.#handlers.onState({ name: 'reconnecting', attempt: this.#failedAttempts, delayMs, cause })
    const generation = this.#generation
    this.#retryTimer = setTimeout(() => {
      if (generation === this.#generation) void this.#register()
    }, delayMs)
  }
}
