// Wires the form, the connection status and the table to one LiveSession.
import { LiveSession } from './live-session.js'
import { PriceTable } from './price-table.js'

const form = document.getElementById('watch-form')
const userIdInput = document.getElementById('user-id')
const tickersInput = document.getElementById('tickers')
const stopButton = document.getElementById('stop')
const liveSection = document.getElementById('live')
const status = document.getElementById('connection-status')
const statusText = document.getElementById('status-text')
const notice = document.getElementById('notice')
const reconnectButton = document.getElementById('reconnect')

const table = new PriceTable(document.querySelector('#prices tbody'))
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })

/** Why a stream ended, in words; every reason but `evicted` is followed by an automatic new session. */
const END_EXPLANATIONS = {
  evicted: 'Disconnected because this user name started streaming in another tab or on another device (each user may stream in only a few places at once). Reconnecting here disconnects the oldest of the others.',
  expired: 'The session reached its maximum lifetime on the server. A new one is registered automatically.',
  deleted: 'The session was deleted on the server. A new one is registered automatically.',
  slow_consumer: 'The server cut this stream off because the page did not keep up with the updates. A new session is registered automatically.',
  shutdown: 'The server is shutting down or restarting. The page registers again as soon as it answers.',
  connection_lost: 'The connection to the server was lost. The page registers again as soon as it answers.'
}

function describeState (state) {
  switch (state.name) {
    case 'connecting': return 'Connecting…'
    case 'live': return `Live: streaming ${state.session.tickers.length} tickers for ${state.session.userId}.`
    case 'reconnecting': return state.delayMs === undefined
      ? `Reconnecting (attempt ${state.attempt})…`
      : `Reconnecting in ${(state.delayMs / 1000).toFixed(1)} s (attempt ${state.attempt}): ${state.cause}.`
    case 'evicted': return 'Disconnected: this user is streaming elsewhere.'
    case 'failed': return `Could not start: ${state.message}`
    case 'stopped': return 'Stopped.'
    default: return state.name
  }
}

function showState (state) {
  status.dataset.state = state.name
  statusText.textContent = describeState(state)
  reconnectButton.hidden = state.name !== 'evicted'
  stopButton.disabled = state.name === 'stopped' || state.name === 'failed' || state.name === 'evicted'
}

function showEnd (reason) {
  notice.dataset.reason = reason
  const explanation = END_EXPLANATIONS[reason] ?? `The server ended the session (${reason}). A new one is registered automatically.`
  notice.textContent = `${clockFormat.format(new Date())}: ${explanation}`
  notice.hidden = false
}

function hideNotice () {
  notice.hidden = true
  notice.dataset.reason = ''
  notice.textContent = ''
}

const session = new LiveSession({
  onState: showState,
  onSession: (registered) => {
    // Exposed for people poking at the API (and for the browser tests).
    liveSection.dataset.sessionId = registered.sessionId
    table.watch(registered.tickers)
  },
  onSnapshot: (prices) => table.apply(prices),
  onPrices: (prices) => table.apply(prices),
  onEnd: showEnd
})

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const tickers = tickersInput.value.split(/[\s,]+/).filter((ticker) => ticker !== '')
  hideNotice()
  table.clear()
  session.start({ userId: userIdInput.value, tickers })
})

stopButton.addEventListener('click', () => {
  session.stop()
  delete liveSection.dataset.sessionId
})

reconnectButton.addEventListener('click', () => {
  hideNotice()
  session.reconnect()
})
