import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { REPO_ROOT } from './process.js'

export const RESULTS_DIR = path.join(REPO_ROOT, 'load/results')

export interface Series {
  name: string
  /** [x, y] points; x in seconds since the run started. */
  points: Array<[number, number]>
}

export interface Chart {
  title: string
  yLabel: string
  series: Series[]
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']

/** A small dependency-free SVG line chart: one panel per chart, stacked. */
export function svgCharts (charts: Chart[]): string {
  const width = 760
  const panelHeight = 220
  const margin = { left: 70, right: 160, top: 30, bottom: 35 }
  const plotWidth = width - margin.left - margin.right
  const plotHeight = panelHeight - margin.top - margin.bottom
  const parts: string[] = []
  charts.forEach((chart, panel) => {
    const top = panel * panelHeight
    const all = chart.series.flatMap((s) => s.points)
    const maxX = Math.max(1, ...all.map(([x]) => x))
    const maxY = Math.max(1e-9, ...all.map(([, y]) => y)) * 1.1
    const sx = (x: number): number => margin.left + (x / maxX) * plotWidth
    const sy = (y: number): number => top + margin.top + plotHeight - (y / maxY) * plotHeight
    parts.push(`<text x="${margin.left}" y="${top + 18}" font-size="14" font-weight="bold">${escapeXml(chart.title)}</text>`)
    parts.push(`<rect x="${margin.left}" y="${top + margin.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`)
    for (let i = 0; i <= 4; i++) {
      const y = (maxY * i) / 4
      parts.push(`<text x="${margin.left - 6}" y="${sy(y) + 4}" font-size="10" text-anchor="end">${formatNumber(y)}</text>`)
      parts.push(`<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${sy(y)}" y2="${sy(y)}" stroke="#eee"/>`)
    }
    parts.push(`<text x="${margin.left + plotWidth / 2}" y="${top + panelHeight - 8}" font-size="10" text-anchor="middle">seconds</text>`)
    parts.push(`<text x="14" y="${top + margin.top + plotHeight / 2}" font-size="10" transform="rotate(-90 14 ${top + margin.top + plotHeight / 2})" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`)
    chart.series.forEach((series, index) => {
      const color = COLORS[index % COLORS.length] ?? '#000'
      const d = series.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`)
      parts.push(`<text x="${margin.left + plotWidth + 10}" y="${top + margin.top + 14 + index * 16}" font-size="11" fill="${color}">${escapeXml(series.name)}</text>`)
    })
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${charts.length * panelHeight}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
}

function escapeXml (text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] ?? c)
}

export function formatNumber (value: number): string {
  // Counts (errors, timeouts, non-2xx) stay counts: 0, not 0.0.
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value)
  if (Math.abs(value) >= 100) return value.toFixed(0)
  if (Math.abs(value) >= 1) return value.toFixed(2)
  return value.toPrecision(2)
}

export interface WrittenReport {
  json: string
  markdown: string
  /** Only when there are charts. */
  svg?: string
}

/** Writes `load/results/<scenario>-<time>.{json,md,svg}` and returns their paths. */
export function writeReport (scenario: string, result: unknown, markdown: string, charts: Chart[]): WrittenReport {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const base = path.join(RESULTS_DIR, `${scenario}-${stamp}`)
  const files = { json: `${base}.json`, markdown: `${base}.md`, svg: charts.length > 0 ? `${base}.svg` : undefined }
  writeFileSync(files.json, `${JSON.stringify(result, null, 2)}\n`)
  writeFileSync(files.markdown, markdown)
  if (files.svg !== undefined) writeFileSync(files.svg, svgCharts(charts))
  return files
}

/** A markdown table from rows of cells. */
export function markdownTable (header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>): string => `| ${cells.map((c) => typeof c === 'number' ? formatNumber(c) : c).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** `--name value` and `--flag` from argv. */
export function parseArgs (argv: string[]): Map<string, string> {
  const args = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    if (!arg.startsWith('--')) continue
    const next = argv[i + 1]
    if (next !== undefined && !next.startsWith('--')) {
      args.set(arg.slice(2), next)
      i++
    } else {
      args.set(arg.slice(2), 'true')
    }
  }
  return args
}

/** The command that ran a load script, for its report: `npm run <script> -- <arguments>`. */
export function npmRunCommand (script: string, argv: readonly string[]): string {
  return argv.length === 0 ? `npm run ${script}` : `npm run ${script} -- ${argv.join(' ')}`
}

/**
 * Runs a load script's `main` when `file` (its `import.meta.filename`) is the script Node was
 * started with, not when a test imports it; a failure prints its stack and exits 1.
 */
export function runAsScript (file: string, main: () => Promise<void>): void {
  if (process.argv[1] === undefined || file !== path.resolve(process.argv[1])) return
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
