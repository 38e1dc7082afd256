// Telling the window that frames the case page how its uploads go: the
// case system's portal may show the page in a frame, and follow it.
//
// Only a parent whose origin the server lists (--embed-origins, in the
// page's <meta name="casedrop-embed-origins">) is told anything, and each
// message is addressed to that origin alone, never "*": a page that
// frames casedrop without being listed hears nothing. The page takes no
// message from its parent.
//
// Each message is one object: {source: "casedrop", version: 1, type,
// case, ...}, with type
//   "ready"            the page has opened its case
//   "upload-started"   {name, size}, each time a file starts or resumes
//   "upload-progress"  {name, size, bytes_sent}, at most 4 a second a file
//   "upload-completed" {name, size, sha256}: the digest the server stored
//   "upload-failed"    {name, error, code}: the retries are over, or the
//                      server refused it (code as in the API's errors)
import { ApiError, explain } from '../lib/api.js'

const version = 1
const progressEvery = 250 // ms between two progress messages of a file

export class Parent {
  constructor(caseId) {
    this.caseId = caseId
    this.origin = listedParentOrigin()
    this.told = new WeakMap() // item → what the parent was told of it
  }

  post(type, fields = {}) {
    if (!this.origin) return
    window.parent.postMessage({ source: 'casedrop', version, type, case: this.caseId, ...fields }, this.origin)
  }

  ready() {
    this.post('ready')
  }

  // changed tells the parent what is new of an upload item, as the page
  // shows it: started, sent so far, done with the server's digest, failed.
  changed(item) {
    if (!this.origin) return
    let told = this.told.get(item)
    if (!told) {
      told = { state: null, sent: -1, at: 0, timer: null, completed: false }
      this.told.set(item, told)
    }
    const was = told.state
    told.state = item.state
    const file = { name: item.name, size: item.size }
    if (item.state === 'uploading') {
      if (was !== 'uploading') this.post('upload-started', file)
      this.progress(item, told)
    }
    if (item.state === 'failed' && was !== 'failed') this.post('upload-failed', { name: item.name, ...failure(item.error) })
    // Complete once the case's list has its entry: its digest is the
    // server's, of what it stored.
    const sha256 = item.server && item.server.sha256
    if (item.state === 'done' && sha256 && !told.completed) {
      told.completed = true
      this.post('upload-completed', { ...file, sha256 })
    }
  }

  // progress tells the bytes sent, at most every progressEvery ms; the
  // last change inside that time is told at its end.
  progress(item, told) {
    if (item.sent === told.sent) return
    const wait = told.at + progressEvery - Date.now()
    if (wait > 0) {
      told.timer ??= setTimeout(() => {
        told.timer = null
        if (item.state === 'uploading') this.progress(item, told)
      }, wait)
      return
    }
    told.sent = item.sent
    told.at = Date.now()
    this.post('upload-progress', { name: item.name, size: item.size, bytes_sent: item.sent })
  }
}

// failure is what the parent is told of why an upload stopped: the
// server's message and code, or that it could not be reached.
function failure(err) {
  const { title, code } = explain(err)
  return { error: err instanceof ApiError ? err.message : title, code }
}

// listedParentOrigin is the origin of the window framing the page when
// the server lists it, else null (not framed, or not by a listed origin).
function listedParentOrigin() {
  if (window.parent === window) return null
  const meta = document.querySelector('meta[name="casedrop-embed-origins"]')
  const listed = (meta ? meta.content : '').split(/\s+/).filter(Boolean).map(originOf)
  const parent = parentOrigin()
  return parent && listed.includes(parent) ? parent : null
}

// parentOrigin is the framing window's origin: Chrome and Safari tell it
// (location.ancestorOrigins); elsewhere the page that loaded the frame is
// its referrer.
function parentOrigin() {
  if (location.ancestorOrigins && location.ancestorOrigins.length) return location.ancestorOrigins[0]
  return originOf(document.referrer)
}

function originOf(url) {
  try {
    return new URL(url).origin
  } catch {
    return null
  }
}
