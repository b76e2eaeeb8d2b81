import { randomBytes } from 'node:crypto'
import type { PriceBus } from '../bus/price-bus.js'
import type { Clock } from '../clock.js'
import { isLevelEnabled, type Logger } from '../logger.js'
import type { SessionStream, SseSink } from '../stream/session-stream.js'
import { shortId } from '../stream/session-stream.js'
import type { StreamHub } from '../stream/stream-hub.js'
import { DEACTIVATION_REASONS, type DeactivationReason, type Session, type SessionView } from './session.js'

export interface SessionPolicy {
  maxSessionsPerUser: number
  sessionTtlMs: number
  sessionMaxAgeMs: number
}

export interface RegistryCounters {
  registered: number
  deactivated: Record<DeactivationReason, number>
}

export type DeactivationObserver = (session: Readonly<Session>, reason: DeactivationReason) => void

export type RegisterResult =
  | { ok: true, session: SessionView, evicted: string[] }
  | { ok: false, error: 'shutting_down' }

export type OpenStreamResult =
  | { ok: true, stream: SessionStream }
  | { ok: false, error: 'not_found' | 'already_streaming' | 'shutting_down' }

export interface SessionRegistryOptions {
  policy: SessionPolicy
  bus: Pick<PriceBus, 'watch' | 'unwatch' | 'latest'>
  hub: StreamHub
  clock: Clock
  logger: Logger
  /** Session id source; 128 random bits, URL-safe. Injectable for tests only. */
  newSessionId?: () => string
}

const ID_BYTES = 16
const IDS_PER_REFILL = 256
let idPool = Buffer.alloc(0)
let idPoolOffset = 0

/**
 * 128 bits from the CSPRNG, base64url. Drawn from a pool refilled 4 KiB at a time: one
 * `randomBytes(16)` per registration was a tenth of the CPU of a registration burst.
 */
export function randomSessionId (): string {
  if (idPoolOffset + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * IDS_PER_REFILL)
    idPoolOffset = 0
  }
  const id = idPool.toString('base64url', idPoolOffset, idPoolOffset + ID_BYTES)
  idPoolOffset += ID_BYTES
  return id
}

/**
 * All live sessions, by id and per user in creation order, and the one place a session ends.
 *
 * Invariant: a session is in `sessions` exactly while its state is not `ended`. Every
 * mutation below is synchronous, so no other request can observe a half-done transition.
 */
export class SessionRegistry {
  readonly counters: RegistryCounters = {
    registered: 0,
    deactivated: Object.fromEntries(DEACTIVATION_REASONS.map((reason) => [reason, 0])) as Record<DeactivationReason, number>
  }

  private readonly sessions = new Map<string, Session>()
  /** Per user, in creation order: the first is the oldest. At most MAX_SESSIONS_PER_USER long. */
  private readonly sessionsByUser = new Map<string, Session[]>()
  private readonly policy: SessionPolicy
  private readonly bus: SessionRegistryOptions['bus']
  private readonly hub: StreamHub
  private readonly clock: Clock
  private readonly logger: Logger
  private readonly newSessionId: () => string
  private acceptingNewWork = true
  private readonly deactivationObservers: DeactivationObserver[] = []

  constructor (options: SessionRegistryOptions) {
    this.policy = options.policy
    this.bus = options.bus
    this.hub = options.hub
    this.clock = options.clock
    this.logger = options.logger
    this.newSessionId = options.newSessionId ?? randomSessionId
  }

  /** Registered, not yet deactivated (the `tickstream_sessions_active` gauge). */
  get activeCount (): number {
    return this.sessions.size
  }

  get isAccepting (): boolean {
    return this.acceptingNewWork
  }

  /**
   * Registers a session: watches its tickers, makes room among the user's sessions (ending
   * the overdue ones as `expired`, then evicting the oldest until the user is below
   * MAX_SESSIONS_PER_USER), and records it. All in this one synchronous call, so concurrent
   * registrations of one user can never overshoot the limit.
   */
  register (userId: string, tickers: readonly string[]): RegisterResult {
    if (!this.acceptingNewWork) return { ok: false, error: 'shutting_down' }
    const sessionTickers = [...tickers]
    const session: Session = {
      id: this.newSessionId(),
      userId,
      tickers: sessionTickers,
      createdAt: this.clock(),
      state: 'pending',
      stream: undefined,
      // Watched before the user's old sessions are let go: a ticker that an evicted session
      // was the last to watch, and that this one watches too, keeps its bus subscription
      // instead of being released and subscribed again. The listener runs only on later
      // deliveries, never within watch(), so `session` is set by then.
      busWatch: this.bus.watch(sessionTickers, (update) => session.stream?.offer(update))
    }

    const evicted = this.makeRoomFor(userId, session.createdAt)
    this.sessions.set(session.id, session)
    const owned = this.sessionsByUser.get(userId)
    // A new user, or one whose last session was just ended along with the list.
    if (owned === undefined) this.sessionsByUser.set(userId, [session])
    else owned.push(session)
    this.counters.registered++
    return { ok: true, session: this.toView(session), evicted }
  }

  /** Ends the user's sessions overdue at `now`, then evicts the oldest below the limit; returns the evicted ids, oldest first. */
  private makeRoomFor (userId: string, now: number): string[] {
    this.expireOverdueSessionsOf(userId, now)
    const evicted: string[] = []
    const owned = this.sessionsByUser.get(userId)
    while (owned !== undefined && owned.length >= this.policy.maxSessionsPerUser) {
      const oldest = owned[0]
      /* c8 ignore next -- the loop condition guarantees a first element */
      if (oldest === undefined || !this.deactivate(oldest.id, 'evicted')) break
      evicted.push(oldest.id)
    }
    return evicted
  }

  /**
   * Ends the user's sessions that are past their deadline but not yet swept (reason
   * `expired`), as `liveSession` would: such a session no longer counts against the limit, so
   * it never makes a registration evict a live one, nor shows up in `evicted`.
   */
  private expireOverdueSessionsOf (userId: string, now: number): void {
    const owned = this.sessionsByUser.get(userId)
    if (owned === undefined) return
    // Each deactivate removes its session from this very list: the index moves on only past
    // a session that stays. (No copy: this runs on every registration.)
    let index = 0
    while (index < owned.length) {
      const session = owned[index]
      if (session !== undefined && now >= this.expiresAt(session) && this.deactivate(session.id, 'expired')) continue
      index++
    }
  }

  /** The live session's public view; `undefined` once it is unknown or ended. */
  view (sessionId: string): SessionView | undefined {
    const session = this.liveSession(sessionId)
    return session === undefined ? undefined : this.toView(session)
  }

  /**
   * The session if it is live. One past its deadline but not yet swept ends here and now:
   * otherwise it could still be shown, or opened, which would extend its life to max age.
   */
  private liveSession (sessionId: string): Session | undefined {
    const session = this.sessions.get(sessionId)
    if (session === undefined) return undefined
    if (this.clock() >= this.expiresAt(session)) {
      this.deactivate(sessionId, 'expired')
      return undefined
    }
    return session
  }

  /** Backpressure state of a session's stream, for operators and tests; `undefined` when not streaming. */
  streamStats (sessionId: string): { pendingPrices: number, congested: boolean, bufferedBytes: number } | undefined {
    const stream = this.sessions.get(sessionId)?.stream
    if (stream === undefined) return undefined
    return { pendingPrices: stream.pendingSize, congested: stream.isCongested, bufferedBytes: stream.bufferedBytes }
  }

  /**
   * Attaches an SSE response to a session. `startResponse` is called only when the session
   * can stream, so the caller writes headers only then. Check and attach are one step.
   */
  openStream (sessionId: string, startResponse: () => SseSink): OpenStreamResult {
    if (!this.acceptingNewWork) return { ok: false, error: 'shutting_down' }
    const session = this.liveSession(sessionId)
    if (session === undefined) return { ok: false, error: 'not_found' }
    if (session.stream !== undefined) return { ok: false, error: 'already_streaming' }

    const stream = this.hub.open(session.id, session.tickers, startResponse(), (reason) => this.deactivate(session.id, reason))
    session.stream = stream
    session.state = 'streaming'
    // Only now that the session holds it: a first write that fails ends the session, stream included.
    stream.start()
    if (stream.isGone || this.sessions.get(session.id) !== session) {
      // The client left before we could start (aborted before the first byte), or the first
      // write failed and already ended the session (deactivate is idempotent).
      this.deactivate(session.id, 'client_closed')
      return { ok: true, stream }
    }
    this.bus.latest(session.tickers)
      .then((snapshot) => stream.sendSnapshot(snapshot))
      .catch(/* c8 ignore next -- latest() never rejects; this keeps a bug from becoming an unhandled rejection */
        (err: unknown) => this.logger.error({ err, sessionId: shortId(session.id) }, 'snapshot failed'))
    return { ok: true, stream }
  }

  /**
   * THE way a session ends, for every reason. The first call wins and releases everything
   * the session holds: its stream, its bus subscriptions, its registry entries. Later calls
   * (the close event after our own end(), a sweep racing a DELETE...) return false.
   */
  deactivate (sessionId: string, reason: DeactivationReason): boolean {
    const session = this.sessions.get(sessionId)
    if (session === undefined) return false
    // Check-and-set, no await in between: from this line on every other caller sees it gone.
    this.sessions.delete(sessionId)
    session.state = 'ended'
    try {
      session.stream?.close(reason)
    } catch (err) {
      /* c8 ignore next 2 -- close() guards its writes; if it ever throws, the releases below still run */
      this.logger.error({ err, sessionId: shortId(sessionId), reason }, 'closing stream failed')
    } finally {
      try {
        this.releaseHoldings(session)
      } catch (err) {
        // A transport's unsubscribe is fire-and-forget and should never throw; if one does,
        // the session is still counted and observed as ended, and the caller (a
        // registration evicting it, the sweeper's loop) goes on.
        this.logger.error({ err, sessionId: shortId(sessionId), reason }, 'releasing session holdings failed')
      }
      this.counters.deactivated[reason]++
      if (isLevelEnabled(this.logger, 'debug')) this.logger.debug({ sessionId: shortId(sessionId), reason, lifetimeMs: this.clock() - session.createdAt }, 'session deactivated')
      for (const observer of this.deactivationObservers) {
        try {
          observer(session, reason)
        } catch (err) {
          /* c8 ignore next 2 -- observers are metrics and tests; one failing must not stop the caller's loop */
          this.logger.error({ err, reason }, 'deactivation observer failed')
        }
      }
    }
    return true
  }

  /** Called after each deactivation, once per session (metrics, tests). */
  observeDeactivations (observer: DeactivationObserver): void {
    this.deactivationObservers.push(observer)
  }

  /** The sweep step: ends sessions whose deadline (see `expiresAt`) has passed. */
  expireDue (): number {
    const now = this.clock()
    const due: string[] = []
    for (const session of this.sessions.values()) {
      if (now >= this.expiresAt(session)) due.push(session.id)
    }
    let expired = 0
    for (const id of due) if (this.deactivate(id, 'expired')) expired++
    return expired
  }

  /** Refuses new sessions and streams, and ends every live session with reason `shutdown`. */
  shutdown (): number {
    this.acceptingNewWork = false
    let ended = 0
    for (const id of [...this.sessions.keys()]) if (this.deactivate(id, 'shutdown')) ended++
    return ended
  }

  private releaseHoldings (session: Session): void {
    const userSessions = this.sessionsByUser.get(session.userId) ?? []
    const index = userSessions.indexOf(session)
    // Eviction, the end a registration burst makes thousands of times a second, removes the
    // oldest, the first: shift() allocates nothing, where splice() returns an array.
    if (index === 0) userSessions.shift()
    else if (index !== -1) userSessions.splice(index, 1)
    if (userSessions.length === 0) this.sessionsByUser.delete(session.userId)
    this.bus.unwatch(session.busWatch)
    session.stream = undefined
  }

  /**
   * A session whose stream was never opened expires SESSION_TTL_MS after registration; any
   * session, streaming or not, at SESSION_MAX_AGE_MS.
   */
  private expiresAt (session: Session): number {
    const maxAge = this.policy.sessionMaxAgeMs
    const lifetime = session.state === 'pending' ? Math.min(this.policy.sessionTtlMs, maxAge) : maxAge
    return session.createdAt + lifetime
  }

  private toView (session: Session): SessionView {
    return {
      sessionId: session.id,
      userId: session.userId,
      tickers: [...session.tickers],
      state: session.state === 'streaming' ? 'streaming' : 'pending',
      createdAt: session.createdAt,
      expiresAt: this.expiresAt(session)
    }
  }
}
