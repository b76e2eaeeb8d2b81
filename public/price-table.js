// The live table: one row per ticker with its price, change since the first price this page
// received, and the time of the last update. Built with DOM calls, never innerHTML.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })

/** Cents are enough for a stock above a dollar; below that they would hide every move. */
function fractionDigits (price) {
  return price < 1 ? 4 : 2
}

function formatPrice (price) {
  const digits = fractionDigits(price)
  return price.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function formatSigned (value, digits) {
  return value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: 'exceptZero' })
}

function direction (from, to) {
  if (to > from) return 'up'
  if (to < from) return 'down'
  return 'flat'
}

const ARROWS = { up: '▲', down: '▼', flat: '■' }
const SPOKEN_DIRECTIONS = { up: 'up', down: 'down', flat: 'unchanged' }

function element (tag, className, text) {
  const node = document.createElement(tag)
  if (className !== undefined) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

export class PriceTable {
  #body
  #tickers = []
  /** ticker -> { row, priceCell, changeCell, timeCell, baseline, last } */
  #rows = new Map()

  constructor (tbody) {
    this.#body = tbody
    this.#showMessage('Press “Start streaming” to see live prices.')
  }

  /** Forgets every row and baseline: a new watch starts counting change from scratch. */
  clear () {
    this.#tickers = []
    this.#rows.clear()
    this.#showMessage('Waiting for the first prices…')
  }

  /**
   * One row per ticker, in the session's order. The same list again (a new session after a
   * reconnect) keeps the rows and their baselines, so "change" does not jump back to zero.
   */
  watch (tickers) {
    if (tickers.length === this.#tickers.length && tickers.every((ticker, i) => ticker === this.#tickers[i])) return
    this.#tickers = [...tickers]
    this.#rows.clear()
    this.#body.replaceChildren(...tickers.map((ticker) => this.#createRow(ticker)))
  }

  /** Snapshot and updates are applied alike: a snapshot after a reconnect is news too. */
  apply (prices) {
    for (const price of prices) this.#update(price)
  }

  #showMessage (text) {
    const cell = element('td', 'table-message', text)
    cell.colSpan = 4
    const row = element('tr')
    row.append(cell)
    this.#body.replaceChildren(row)
  }

  #createRow (ticker) {
    const row = element('tr')
    row.dataset.ticker = ticker
    const header = element('th', 'ticker', ticker)
    header.scope = 'row'
    const priceCell = element('td', 'num price', '—')
    const changeCell = element('td', 'num change', 'waiting')
    const timeCell = element('td', 'num updated', '—')
    row.append(header, priceCell, changeCell, timeCell)
    this.#rows.set(ticker, { row, priceCell, changeCell, timeCell, baseline: undefined, last: undefined })
    return row
  }

  #update ({ ticker, price, ts }) {
    const entry = this.#rows.get(ticker)
    if (entry === undefined) return
    entry.baseline ??= price
    const previous = entry.last
    entry.last = price
    // The raw value behind the formatted text, for scripts and tests reading the page.
    entry.row.dataset.price = String(price)

    entry.priceCell.textContent = formatPrice(price)
    this.#renderChange(entry.changeCell, entry.baseline, price)
    const updatedAt = new Date(ts)
    const time = element('time', undefined, timeFormat.format(updatedAt))
    time.dateTime = updatedAt.toISOString()
    entry.timeCell.replaceChildren(time)

    if (previous !== undefined && previous !== price) this.#flash(entry.row, direction(previous, price))
  }

  #renderChange (cell, baseline, price) {
    const moved = direction(baseline, price)
    const difference = price - baseline
    const percent = baseline === 0 ? 0 : (difference / baseline) * 100
    cell.dataset.direction = moved
    const arrow = element('span', 'arrow', ARROWS[moved])
    arrow.setAttribute('aria-hidden', 'true')
    cell.replaceChildren(
      arrow,
      element('span', 'visually-hidden', ` ${SPOKEN_DIRECTIONS[moved]} `),
      element('span', 'amount', formatSigned(difference, fractionDigits(price))),
      element('span', 'percent', `(${formatSigned(percent, 2)}%)`)
    )
  }

  /** Replays the flash: reading offsetWidth between removing and adding the class makes the browser see a new animation. */
  #flash (row, tick) {
    row.classList.remove('flash-up', 'flash-down')
    void row.offsetWidth
    row.classList.add(`flash-${tick}`)
  }
}
