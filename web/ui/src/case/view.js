// The upload list of the case page: one row per file with its progress,
// speed, time left, pause/resume, and its SHA-256 once known; and the
// total above it.
import { explain } from '../lib/api.js'
import { copyButton } from '../lib/copy.js'
import { $, announce, frameThrottle, h } from '../lib/dom.js'
import { bytes, duration, percent, speed } from '../lib/format.js'
import { scanText } from './files.js'

const stateLabels = {
  queued: 'Waiting',
  uploading: 'Uploading',
  paused: 'Paused',
  done: 'Uploaded',
  failed: 'Stopped',
}

export class UploadList {
  constructor(queue) {
    this.queue = queue
    this.rows = new Map() // item → row
    this.dirty = new Set()
    this.render = frameThrottle(() => this.flush())
    this.list = $('#upload-list')
    this.total = {
      bar: $('#total-progress'),
      text: $('#total-text'),
    }
  }

  changed(item) {
    this.dirty.add(item)
    this.render()
  }

  flush() {
    for (const item of this.dirty) {
      if (item.state === 'cancelled') {
        this.rows.get(item)?.el.remove()
        this.rows.delete(item)
        continue
      }
      let row = this.rows.get(item)
      if (!row) {
        row = new Row(item)
        this.rows.set(item, row)
        this.list.append(row.el)
      }
      row.update()
    }
    this.dirty.clear()
    this.updateTotal()
  }

  updateTotal() {
    const t = this.queue.totals()
    $('#uploads').hidden = t.files === 0
    this.total.bar.parentElement.dataset.state = t.files && t.done === t.files ? 'done' : ''
    this.total.bar.max = Math.max(t.size, 1)
    this.total.bar.value = t.size ? t.sent : 1
    const parts = [`${t.done} of ${t.files} ${t.files === 1 ? 'file' : 'files'} uploaded`, `${bytes(t.sent)} of ${bytes(t.size)}`]
    if (t.perSecond > 0 && t.done < t.files) {
      parts.push(speed(t.perSecond), `${duration((t.size - t.sent) / t.perSecond)} left`)
    }
    this.total.text.textContent = parts.join(' · ')
  }
}

class Row {
  constructor(item) {
    this.item = item
    this.state = h('span', { class: 'state' })
    this.pause = h('button', { type: 'button', class: 'small', onclick: () => this.toggle() }, 'Pause')
    this.cancel = h('button', { type: 'button', class: 'small quiet', onclick: () => item.cancel() }, 'Cancel')
    this.bar = h('progress', { max: 1, value: 0, 'aria-label': `${item.name}: uploaded` })
    this.detail = h('p', { class: 'detail' })
    this.digest = h('div', { class: 'digest' })
    this.scan = h('p', { class: 'scan', hidden: true })
    this.el = h(
      'li',
      { class: 'upload', 'data-name': item.name },
      h('div', { class: 'upload-head' }, h('span', { class: 'name' }, item.name), this.state, h('span', { class: 'actions' }, this.pause, this.cancel)),
      this.bar,
      this.detail,
      this.digest,
      this.scan,
    )
    this.announced = null
    this.scanShown = ''
  }

  toggle() {
    if (this.item.state === 'paused' || this.item.state === 'failed') this.item.resume()
    else this.item.pause()
  }

  update() {
    const item = this.item
    this.el.dataset.state = item.state
    if (item.resumedFrom !== null) this.el.dataset.resumedFrom = item.resumedFrom
    this.state.textContent = item.retrying ? 'Connection lost, retrying…' : stateLabels[item.state]
    this.bar.max = Math.max(item.size, 1)
    this.bar.value = item.size ? item.sent : item.state === 'done' ? 1 : 0
    const active = item.state !== 'done'
    this.pause.hidden = !active
    this.cancel.hidden = !active
    this.pause.textContent = item.state === 'paused' ? 'Resume' : item.state === 'failed' ? 'Try again' : 'Pause'
    this.pause.setAttribute('aria-label', `${this.pause.textContent} ${item.name}`)
    this.cancel.setAttribute('aria-label', `Cancel ${item.name}`)
    this.detail.textContent = this.detailText()
    this.updateDigest()
    this.updateScan()
    if (this.announced !== item.state && (item.state === 'done' || item.state === 'failed')) {
      announce(`${item.name}: ${stateLabels[item.state].toLowerCase()}`)
    }
    this.announced = item.state
  }

  detailText() {
    const item = this.item
    const parts = [`${bytes(item.sent)} of ${bytes(item.size)} (${percent(item.sent, item.size)})`]
    const rate = item.rate.perSecond()
    if (item.state === 'uploading' && rate > 0) {
      parts.push(speed(rate), `${duration((item.size - item.sent) / rate)} left`)
    }
    if (item.resumedFrom !== null) {
      parts.push(`continued from ${bytes(item.resumedFrom)} stored earlier`)
    }
    if (item.state === 'failed' && item.error) {
      const { title, text } = explain(item.error)
      parts.push(`${title}: ${text}`)
    }
    return parts.join(' · ')
  }

  // updateScan shows the malware check of the file the server stored:
  // under way, or blocked (a clean file is simply complete).
  updateScan() {
    const state = (this.item.server && this.item.server.state) || ''
    if (state === this.scanShown) return
    this.scanShown = state
    const text = scanText[state]
    this.el.dataset.scan = state
    this.scan.hidden = !text
    this.scan.className = `scan ${state}`
    this.scan.textContent = text ? `${this.item.name}: ${text}.` : ''
    if (state === 'quarantined') announce(`${this.item.name}: ${text}`)
  }

  updateDigest() {
    const { hash, server, name } = this.item
    const el = this.digest
    const digestLine = (label, hex) => sumLine(label, hex, name)
    const serverSum = server && server.sha256
    let key, content
    if (hash.error) {
      key = `error:${serverSum}`
      content = [`Your browser could not read the file to check it (${hash.error}).`, serverSum && digestLine('The server stored SHA-256', serverSum)]
    } else if (!hash.sha256) {
      const checking = `computing in your browser… ${percent(hash.done, this.item.size)}`
      key = `hashing:${serverSum}:${checking}`
      content = serverSum ? [digestLine('SHA-256 (server)', serverSum), h('span', { class: 'pending' }, checking)] : [h('span', { class: 'pending' }, `SHA-256: ${checking}`)]
    } else if (!serverSum) {
      key = `local:${hash.sha256}`
      content = [digestLine('SHA-256 (your browser)', hash.sha256), this.item.state === 'done' && h('span', { class: 'pending' }, 'waiting for the server’s digest…')]
    } else if (serverSum === hash.sha256) {
      key = `ok:${serverSum}`
      content = [
        h('span', { class: 'check', 'aria-hidden': 'true' }, '✓'),
        digestLine('SHA-256', serverSum),
        h('span', { class: 'verdict' }, 'the server’s digest matches the one your browser computed'),
      ]
    } else {
      key = `bad:${serverSum}:${hash.sha256}`
      content = [
        h('span', { class: 'cross', 'aria-hidden': 'true' }, '✗'),
        h('strong', {}, 'The digests differ: the file changed while it uploaded, or arrived damaged. Send it again. '),
        digestLine('Server', serverSum),
        digestLine('your browser', hash.sha256),
      ]
    }
    if (el.dataset.key === key) return
    el.dataset.key = key
    el.className = `digest ${key.split(':')[0]}`
    el.dataset.sha256 = serverSum || ''
    el.replaceChildren(...content.filter(Boolean))
  }
}

function sumLine(label, hex, name) {
  return h('span', { class: 'sum' }, `${label} `, h('code', {}, hex), ' ', copyButton(`SHA-256 of ${name}`, () => hex))
}

// serverEntry finds an uploaded item in the case's file list: the file
// this user sent by tus with its size and name, or the server's
// "name (2).ext" when the name was taken. Of several, the one whose
// digest matches the browser's.
export function serverEntry(files, item, username) {
  const candidates = files.filter(
    (f) =>
      f.state !== 'uploading' && f.via === 'tus' && f.uploaded_by === username && f.size === item.size && sameOrNumbered(f.name, item.name),
  )
  if (candidates.length === 0) return null
  const match = item.hash.sha256 && candidates.find((f) => f.sha256 === item.hash.sha256)
  if (match) return match
  return candidates.sort((a, b) => Date.parse(b.uploaded_at || 0) - Date.parse(a.uploaded_at || 0))[0]
}

function sameOrNumbered(listed, name) {
  if (listed === name) return true
  for (const m of listed.matchAll(/ \(\d+\)/g)) {
    if (listed.slice(0, m.index) + listed.slice(m.index + m[0].length) === name) return true
  }
  return false
}
