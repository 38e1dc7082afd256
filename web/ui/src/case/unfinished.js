// Uploads from an earlier visit that did not finish. A browser cannot
// reopen a file by itself after a reload: the page lists them, with what
// the server has stored of each, and asks for the same files again; the
// queue then finds each one's upload (by its fingerprint) and continues it.
import { Upload, canStoreURLs, defaultOptions } from 'tus-js-client'
import { announce, h, $ } from '../lib/dom.js'
import { bytes, dateTime, percent } from '../lib/format.js'
import { storagePrefix } from './uploads.js'

export class Unfinished {
  constructor(caseId, token) {
    this.prefix = storagePrefix(caseId)
    this.headers = { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' }
    this.section = $('#unfinished')
    this.list = $('#unfinished-list')
    this.rows = new Map() // storage key → row
  }

  // load lists the stored uploads of this case, asking the server for
  // each one's offset; uploads the server no longer has are forgotten.
  async load() {
    // A browser that refuses the page its storage (third-party storage
    // blocked in a frame) kept nothing, and tus-js-client's stand-in store
    // cannot list.
    if (!canStoreURLs) return
    const stored = (await defaultOptions.urlStorage.findAllUploads()).filter((u) => u.urlStorageKey.startsWith(this.prefix))
    for (const upload of stored) {
      const offset = await this.offset(upload)
      if (offset === null) {
        await defaultOptions.urlStorage.removeUpload(upload.urlStorageKey)
        continue
      }
      this.add(upload, offset)
    }
    this.updateSection()
  }

  // offset is where the server's stored bytes of upload end, or null if
  // it no longer knows the upload.
  async offset(upload) {
    if (!upload.uploadUrl) return null
    try {
      const res = await fetch(upload.uploadUrl, { method: 'HEAD', headers: this.headers, cache: 'no-store' })
      if (res.status === 404 || res.status === 410 || res.status === 403) return null
      if (!res.ok) return 0
      return Number(res.headers.get('Upload-Offset')) || 0
    } catch {
      return 0 // offline: keep it listed
    }
  }

  add(upload, offset) {
    const name = (upload.metadata && upload.metadata.filename) || 'unnamed file'
    const discard = h('button', { type: 'button', class: 'small quiet', 'aria-label': `Discard the upload of ${name}` }, 'Discard')
    discard.addEventListener('click', () => this.discard(upload, name))
    const row = h(
      'li',
      { 'data-name': name },
      h('span', { class: 'name' }, name),
      ' ',
      h('span', { class: 'detail' }, `${bytes(offset)} of ${bytes(upload.size)} stored (${percent(offset, upload.size)}), started ${dateTime(upload.creationTime)}`),
      ' ',
      discard,
    )
    this.rows.set(upload.urlStorageKey, row)
    this.list.append(row)
  }

  // discard deletes the upload on the server and forgets it.
  async discard(upload, name) {
    await Upload.terminate(upload.uploadUrl, { headers: { Authorization: this.headers.Authorization } }).catch(() => {})
    await defaultOptions.urlStorage.removeUpload(upload.urlStorageKey)
    this.forget(upload.urlStorageKey)
    announce(`The upload of ${name} was discarded`)
  }

  // forget takes an upload off the list: it continues, or is gone.
  forget(key) {
    this.rows.get(key)?.remove()
    this.rows.delete(key)
    this.updateSection()
  }

  updateSection() {
    this.section.hidden = this.rows.size === 0
  }
}
