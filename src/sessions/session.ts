import type { Watch } from '../bus/ticker-subscriptions.js'
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
  /** Its watch of its tickers on the bus, which hands their prices to its stream; ended on deactivation. */
  readonly busWatch: Watch
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
