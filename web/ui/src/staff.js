// The staff page, /staff/cases/{case}: every file of the case with its
// size, state (uploads with their progress, the malware check and what it
// found), door, sender, time and digest; downloads of one, several or all
// (zip); the signed manifest.
import { ApiError } from './lib/api.js'
import { copyButton } from './lib/copy.js'
import { $, announce, h } from './lib/dom.js'
import { fileDownload, startDownloads } from './lib/download.js'
import { bytes, day, percent, timeEl } from './lib/format.js'
import { openCase, ready, showAlert, showRefusal } from './lib/page.js'

// While a file uploads or is checked for malware, the list is fetched
// again this often (ms).
const pollEvery = 3000

async function main() {
  const opened = await openCase('staff · casedrop')
  if (!opened) return
  const { client, me } = opened
  showCaseState(me)
  const table = new FileTable(client)
  $('#refresh').addEventListener('click', () => table.refresh())
  wireDownloads(client, table)
  // The ssh-keygen line's namespace is the case's.
  for (const el of document.querySelectorAll('.case-id-copy')) el.textContent = client.caseId
  await table.refresh()
  ready()
}

function showCaseState(me) {
  const state = $('#case-state')
  state.dataset.state = me.case_state
  if (me.case_state === 'open') {
    state.textContent = 'Open: the customer can send files.'
  } else {
    const purge = me.purge_at
      ? ['Its files are deleted on ', timeEl(me.purge_at, day), '; download what you need before then.']
      : ['Its files are kept until the purge.']
    state.replaceChildren(h('strong', {}, 'Closed. '), ...purge)
  }
}

class FileTable {
  constructor(client) {
    this.client = client
    this.body = $('#file-rows')
    this.rows = new Map() // name → FileRow
    this.files = []
    this.timer = null
    this.selectAll = $('#select-all')
    this.selectAll.addEventListener('change', () => {
      for (const row of this.rows.values()) if (!row.select.disabled) row.select.checked = this.selectAll.checked
      this.selectionChanged()
    })
  }

  async refresh() {
    clearTimeout(this.timer)
    try {
      this.files = await this.client.files()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return showRefusal(err)
      showAlert(err)
      return
    }
    this.render()
    $('#updated').textContent = `Updated ${new Date().toLocaleTimeString()}`
    if (this.files.some((f) => f.state === 'uploading' || f.state === 'scanning')) {
      this.timer = setTimeout(() => this.refresh(), pollEvery)
    }
  }

  render() {
    const seen = new Set()
    let previous = null
    for (const f of this.files) {
      seen.add(f.name)
      let row = this.rows.get(f.name)
      if (!row) {
        row = new FileRow(this, f)
        this.rows.set(f.name, row)
      }
      row.update(f)
      // Keep the list's order; move a row only when it is out of place.
      const want = previous ? previous.tr.nextSibling : this.body.firstChild
      if (want !== row.tr) this.body.insertBefore(row.tr, want)
      previous = row
    }
    for (const [name, row] of this.rows) {
      if (!seen.has(name)) {
        row.tr.remove()
        this.rows.delete(name)
      }
    }
    const complete = this.files.filter((f) => f.state === 'complete')
    $('#empty').hidden = this.files.length > 0
    $('#table-wrap').hidden = this.files.length === 0
    $('#summary').textContent = `${complete.length} complete ${complete.length === 1 ? 'file' : 'files'}, ${bytes(complete.reduce((n, f) => n + f.size, 0))}`
    $('#download-all').disabled = complete.length === 0
    this.selectionChanged()
  }

  selected() {
    return [...this.rows.values()].filter((r) => r.select.checked && !r.select.disabled).map((r) => r.file)
  }

  selectionChanged() {
    const n = this.selected().length
    const button = $('#download-selected')
    button.disabled = n === 0
    button.textContent = n ? `Download ${n} selected` : 'Download selected'
  }
}

class FileRow {
  constructor(table, f) {
    this.file = f
    this.select = h('input', { type: 'checkbox', 'aria-label': `Select ${f.name}`, onchange: () => table.selectionChanged() })
    this.download = h('button', { type: 'button', class: 'small', 'aria-label': `Download ${f.name}` }, 'Download')
    this.download.addEventListener('click', () => downloadAll(table.client, [fileDownload(this.file.name)]))
    this.sum = h('div', { class: 'sum' })
    this.cells = {
      size: h('td', { 'data-label': 'Size', class: 'num' }),
      state: h('td', { 'data-label': 'State', class: 'file-state' }),
      via: h('td', { 'data-label': 'Via', class: 'short' }),
      from: h('td', { 'data-label': 'From', class: 'short' }),
      when: h('td', { 'data-label': 'When', class: 'short' }),
    }
    this.tr = h(
      'tr',
      { 'data-name': f.name },
      h('td', { class: 'pick' }, this.select),
      h('th', { scope: 'row', class: 'file' }, h('span', { class: 'name' }, f.name), this.sum),
      Object.values(this.cells),
      h('td', { class: 'act' }, this.download),
    )
    this.shown = ''
  }

  update(f) {
    this.file = f
    const key = JSON.stringify(f)
    if (key === this.shown) return
    this.shown = key
    this.tr.dataset.state = f.state
    const complete = f.state === 'complete'
    this.select.disabled = !complete
    if (!complete) this.select.checked = false
    this.download.hidden = !complete
    this.cells.size.textContent = bytes(f.size)
    this.cells.state.replaceChildren(...stateContent(f))
    this.cells.via.textContent = f.via
    this.cells.from.textContent = f.uploaded_by
    this.cells.when.replaceChildren(timeEl(f.uploaded_at || f.started_at))
    if (this.sum.dataset.sha256 !== (f.sha256 || '')) {
      this.sum.dataset.sha256 = f.sha256 || ''
      this.sum.replaceChildren(
        ...(f.sha256 ? ['SHA-256 ', copyButton(`SHA-256 of ${f.name}`, () => f.sha256), h('code', {}, f.sha256)] : []),
      )
    }
  }
}

function stateContent(f) {
  if (f.state === 'uploading') {
    const received = f.received || 0
    return [
      h('span', { class: 'state uploading' }, `Uploading ${percent(received, f.size)}`),
      h('progress', { max: Math.max(f.size, 1), value: received, 'aria-label': `${f.name}: received` }),
      h('span', { class: 'detail' }, `${bytes(received)} of ${bytes(f.size)}`),
    ]
  }
  if (f.state === 'rejected') {
    return [h('span', { class: 'state rejected' }, 'Rejected'), f.reason && h('span', { class: 'detail' }, f.reason)]
  }
  if (f.state === 'scanning') {
    return [h('span', { class: 'state scanning' }, 'Checking for malware…'), h('span', { class: 'detail' }, 'downloadable once the check passes')]
  }
  if (f.state === 'quarantined') {
    return [
      h('span', { class: 'state quarantined' }, 'Quarantined'),
      h('span', { class: 'detail finding' }, f.finding ? `found ${f.finding}` : f.reason),
      h('span', { class: 'detail' }, 'not downloadable; an admin can release it (casedrop files release)'),
    ]
  }
  if (f.state === 'complete' && f.released_at) {
    return [
      h('span', { class: 'state complete' }, 'Complete'),
      h('span', { class: 'detail' }, `released from quarantine (found ${f.finding || f.reason}): ${f.release_reason}`),
    ]
  }
  return [h('span', { class: `state ${f.state}` }, f.state === 'complete' ? 'Complete' : f.state)]
}

function wireDownloads(client, table) {
  $('#download-selected').addEventListener('click', () =>
    downloadAll(client, table.selected().map((f) => fileDownload(f.name))),
  )
  $('#download-all').addEventListener('click', () => downloadAll(client, ['archive.zip']))
  $('#get-sums').addEventListener('click', () => downloadAll(client, ['SHA256SUMS']))
  $('#get-sshsig').addEventListener('click', () => downloadAll(client, ['SHA256SUMS.sshsig']))
  $('#get-sig').addEventListener('click', () => downloadAll(client, ['SHA256SUMS.sig']))
}

const labels = { 'archive.zip': 'all files as a zip' }

// downloadAll hands the downloads to the browser, which shows their
// progress in its own list and runs them side by side. Several from one
// click make some browsers ask once whether the site may download
// multiple files.
async function downloadAll(client, downloads) {
  const status = $('#download-status')
  const what = downloads.length === 1 ? labels[downloads[0]] || downloads[0].replace(/^files\//, '') : `${downloads.length} files`
  try {
    await startDownloads(client, downloads)
  } catch (err) {
    showAlert(err)
    status.textContent = `Downloading ${what} failed.`
    return
  }
  const several =
    downloads.length > 1 ? ' If it asks whether this site may download multiple files, allow it.' : ''
  status.textContent = `Downloading ${what}: your browser shows the progress in its downloads.${several}`
  announce(`Downloading ${what}`)
}

main().catch((err) => showRefusal(err))
