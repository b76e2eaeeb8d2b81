import type { Logger } from '../logger.js'
import type { SessionRegistry } from './session-registry.js'

/** Runs the registry's expiry step every SWEEP_INTERVAL_MS until stopped. */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined

  constructor (
    private readonly registry: SessionRegistry,
    private readonly intervalMs: number,
    private readonly logger: Logger
  ) {}

  start (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => this.sweepOnce(), this.intervalMs)
    // Expiry alone must not keep the process alive.
    this.timer.unref()
  }

  sweepOnce (): number {
    try {
      return this.registry.expireDue()
    } catch (err) {
      /* c8 ignore next 3 -- deactivate guards its own steps; a throw here is a bug worth logging, not a crash */
      this.logger.error({ err }, 'session sweep failed')
      return 0
    }
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}
