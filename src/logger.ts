/**
 * The slice of a pino logger the core uses. Fastify's logger satisfies it; the core stays
 * free of framework types.
 */
export interface LogFn {
  (obj: object, msg?: string): void
  (msg: string): void
}

export interface Logger {
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  /** pino's level check; loggers without one (test doubles) are taken to write everything. */
  isLevelEnabled?: (level: LevelName) => boolean
}

/** pino's standard levels, lowest first. */
export type LevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

/**
 * Whether a line at `level` would be written. Hot paths (every registration, every eviction,
 * Fastify's two request lines) ask first, so that with the level off they do not build the
 * line's fields at all.
 */
export function isLevelEnabled (logger: Logger, level: LevelName): boolean {
  return logger.isLevelEnabled?.(level) ?? true
}

const ignore: LogFn = () => {}
// No level check: a copy that overrides one method (a test's `warn`) must not report that level off.
export const silentLogger: Logger = { error: ignore, warn: ignore, info: ignore, debug: ignore }

/**
 * Lets one warning through per `intervalMs` and counts the ones it held back, so a flood of
 * bad input cannot flood the log.
 */
export class RateLimitedWarning {
  private nextAllowedAt = 0
  private suppressed = 0

  constructor (
    private readonly logger: Logger,
    private readonly intervalMs: number,
    private readonly clock: () => number
  ) {}

  warn (context: object, message: string): void {
    const now = this.clock()
    if (now < this.nextAllowedAt) {
      this.suppressed++
      return
    }
    this.nextAllowedAt = now + this.intervalMs
    const suppressed = this.suppressed
    this.suppressed = 0
    this.logger.warn({ ...context, suppressedSinceLast: suppressed }, message)
  }
}
