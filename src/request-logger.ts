import type { LevelName } from './logger.js'

/** The arguments of a pino log method: `(obj, msg?, ...format args)` or `(msg, ...format args)`. */
export type LogArgs = [objOrMsg: unknown, msg?: string, ...rest: unknown[]]
type LogMethod = (...args: LogArgs) => void

/** The part of a pino logger a request logger stands in for (Fastify's FastifyBaseLogger). */
export interface LevelLogger<Child = unknown> {
  level: string
  /** pino's numeric level, kept in step with `level`; optional so other loggers still fit. */
  readonly levelVal?: number
  fatal: LogMethod
  error: LogMethod
  warn: LogMethod
  info: LogMethod
  debug: LogMethod
  trace: LogMethod
  child: (bindings: Record<string, unknown>, options?: Record<string, unknown>) => Child
}

/**
 * pino's standard levels; `silent` is above all of them. Higher is more severe, and a line is
 * written when its level is at or above the logger's: pino's default order, the only one the
 * service configures (a `levelComparison: 'DESC'` logger would need the opposite test).
 */
const LEVEL_VALUES = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const
const LEVEL_VALUES_BY_NAME: Readonly<Record<string, number>> = LEVEL_VALUES

/**
 * A request's logger that becomes a real pino child only when it first writes a line.
 *
 * Fastify gives each request `logger.child({ reqId })`. A registration at LOG_LEVEL=warn
 * writes no line at all, yet building that child (its prototype chain and serialized
 * bindings) cost 35 k of the ~785 k instructions of a registration (BENCHMARKS.md,
 * `npm run load:instructions`). Every line this logger does write goes through the real
 * child, so it carries the request id as before. Used for children with default options
 * only; a route with its own log level or serializers gets a real child at once.
 */
export class LazyRequestLogger<Child extends LevelLogger<Child>> {
  private realChild: Child | undefined

  constructor (
    private readonly parent: LevelLogger<Child>,
    private readonly childBindings: Record<string, unknown>
  ) {}

  get level (): string {
    return (this.realChild ?? this.parent).level
  }

  set level (level: string) {
    this.real().level = level
  }

  /** True when a line at `level` would be written (pino's rule: at or above the logger's level). */
  isLevelEnabled (level: LevelName): boolean {
    return LEVEL_VALUES[level] >= this.threshold()
  }

  // Each method passes its level's number, not its name to look up: two of them run on every
  // request (Fastify's "incoming request" and "request completed"), and at LOG_LEVEL=warn
  // that check is all they do.
  fatal (...args: LogArgs): void { this.write(LEVEL_VALUES.fatal, 'fatal', args) }
  error (...args: LogArgs): void { this.write(LEVEL_VALUES.error, 'error', args) }
  warn (...args: LogArgs): void { this.write(LEVEL_VALUES.warn, 'warn', args) }
  info (...args: LogArgs): void { this.write(LEVEL_VALUES.info, 'info', args) }
  debug (...args: LogArgs): void { this.write(LEVEL_VALUES.debug, 'debug', args) }
  trace (...args: LogArgs): void { this.write(LEVEL_VALUES.trace, 'trace', args) }
  silent (..._args: LogArgs): void {}

  child (bindings: Record<string, unknown>, options?: Record<string, unknown>): Child {
    return this.real().child(bindings, options)
  }

  private write (levelValue: number, level: LevelName, args: LogArgs): void {
    if (levelValue < this.threshold()) return
    const child = this.real()
    child[level](...args)
  }

  /**
   * The numeric level below which nothing is written: pino's `levelVal` (a getter that returns
   * one field) where there is one, rather than the `level` name, which pino computes from the
   * number on each read. A name it does not know filters nothing.
   */
  private threshold (): number {
    const logger = this.realChild ?? this.parent
    return logger.levelVal ?? LEVEL_VALUES_BY_NAME[logger.level] ?? 0
  }

  private real (): Child {
    this.realChild ??= this.parent.child(this.childBindings)
    return this.realChild
  }
}
