import type { PriceListener } from '../bus/ticker-subscriptions.js'
import type { SessionStream } from '../stream/session-stream.js'

/** Every way a session can end. Each one goes through `SessionRegistry.deactivate`. */
export const DEACTIVATION_REASONS = [
  'client_closed', 'evicted', 'expired', 'deleted', 'slow_consumer', 'shutdown'
] as const
export type DeactivationReason = (typeof DEACTIVATION_REASONS)[number]

/** `ended` is terminal; only deactivate sets it. */
export type SessionState = 'pending' | 'streaming' | 'ended'

export interface Session {
  readonly id: string
  readonly userId: string
  readonly tickers: readonly string[]
  readonly createdAt: number
  state: SessionState
  stream: SessionStream | undefined
  /** Hands the session's bus prices to its stream; the same function is watched on every ticker. */
  readonly listener: PriceListener
}

/** Public view of a session (what `GET /sessions/:id` shows). */
export interface SessionView {
  sessionId: string
  userId: string
  tickers: string[]
  state: 'pending' | 'streaming'
  createdAt: number
  expiresAt: number
}
