import { readdirSync, readlinkSync } from 'node:fs'

/**
 * How many of process `pid`'s descriptors refer to `socket` (as /proc names it,
 * `socket:[inode]`); `self` for this process.
 */
export function descriptorsFor (socket: string, pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/fd`).filter((entry) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${entry}`) === socket
    } catch {
      return false // closed between the listing and the read
    }
  }).length
}
