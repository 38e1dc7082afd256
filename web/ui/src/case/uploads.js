// The upload queue of the case page: tus uploads through tus-js-client,
// a few at a time, with retries, pause and resume; and beside each upload,
// the file's SHA-256 computed in a Web Worker.
//
// tus-js-client keeps each unfinished upload's URL in localStorage under
// a fingerprint of the file (case, name, type, size, modification time):
// choosing the same file again, after a reload or the next day, finds the
// upload and continues it from the offset the server has stored.
import { Upload } from 'tus-js-client'
import { apiErrorFrom } from '../lib/api.js'
import { Rate } from '../lib/format.js'

// Waits between retries after a failed request, in ms: quick at first,
// then up to two minutes, about eight minutes in all. A request that
// moves the upload forward starts the series again.
const retryDelays = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000, 60000, 120000, 120000, 120000]

// Refusals a retry cannot change: the credential or the case.
const finalStatuses = new Set([400, 401, 403, 404, 410, 413, 460])

export const storagePrefix = (caseId) => `tus::casedrop/${caseId}/`

function fingerprint(caseId, file) {
  return ['casedrop', caseId, file.size, file.lastModified, file.type || '-', file.name].join('/')
}

// tusError is the ApiError behind a tus-js-client error, if the server
// answered.
function tusError(err) {
  const res = err && err.originalResponse
  if (!res) return null
  return apiErrorFrom(res.getStatus(), res.getBody())
}

export class UploadQueue {
  // onChange(item) runs whenever an item changes; onFinished(item) once an
  // upload is complete; onRefused(apiError) when the server refuses the
  // credential or the case.
  constructor({ caseId, token, parallel = 3, onChange, onFinished, onRefused }) {
    this.caseId = caseId
    this.token = token
    this.parallel = parallel
    this.endpoint = new URL('/files/', location.href).href
    this.items = []
    this.onChange = onChange
    this.onFinished = onFinished
    this.onRefused = onRefused
  }

  // add queues files; a file already uploading is skipped. It returns
  // the items added.
  async add(files) {
    const added = []
    for (const file of files) {
      const fp = fingerprint(this.caseId, file)
      if (this.items.some((i) => i.fingerprint === fp && i.state !== 'done')) continue
      const item = new UploadItem(this, file, fp)
      await item.findEarlierUpload()
      this.items.push(item)
      added.push(item)
    }
    this.pump()
    return added
  }

  // pump starts queued uploads while fewer than parallel are running.
  pump() {
    let running = this.items.filter((i) => i.state === 'uploading').length
    for (const item of this.items) {
      if (running >= this.parallel) break
      if (item.state === 'queued') {
        item.start()
        running++
      }
    }
  }

  remove(item) {
    this.items = this.items.filter((i) => i !== item)
    this.pump()
  }

  totals() {
    const counted = this.items.filter((i) => i.state !== 'cancelled')
    return {
      files: counted.length,
      done: counted.filter((i) => i.state === 'done').length,
      size: counted.reduce((n, i) => n + i.size, 0),
      sent: counted.reduce((n, i) => n + i.sent, 0),
      perSecond: counted.reduce((n, i) => n + (i.state === 'uploading' ? i.rate.perSecond() : 0), 0),
    }
  }
}

// UploadItem is one file: its tus upload and its hashing.
//
// state: queued → uploading → done, or paused (by the user), failed (the
// retries ran out, or the server refused), cancelled.
class UploadItem {
  constructor(queue, file, fp) {
    this.queue = queue
    this.file = file
    this.name = file.name
    this.size = file.size
    this.fingerprint = fp
    this.state = 'queued'
    this.sent = 0
    this.rate = new Rate()
    this.error = null
    this.retrying = false
    // earlier: the upload from an earlier visit this one continues;
    // resumedFrom: the offset the server had stored for it.
    this.earlier = null
    this.resumedFrom = null
    this.hash = { done: 0, sha256: null, error: null, worker: null }
    // server: this file's entry in the case's list, once complete.
    this.server = null
    this.upload = new Upload(file, {
      endpoint: queue.endpoint,
      headers: { Authorization: `Bearer ${queue.token}` },
      metadata: { filename: file.name },
      fingerprint: () => Promise.resolve(fp),
      removeFingerprintOnSuccess: true,
      retryDelays,
      onShouldRetry: (err) => this.shouldRetry(err),
      onAfterResponse: (req, res) => this.afterResponse(req, res),
      onProgress: (sent) => this.progress(sent),
      onSuccess: () => this.succeed(),
      onError: (err) => this.fail(err),
    })
  }

  changed() {
    this.queue.onChange(this)
  }

  async findEarlierUpload() {
    const earlier = await this.upload.findPreviousUploads()
    if (earlier.length === 0) return
    // The newest, should there be several.
    earlier.sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime))
    this.earlier = earlier[0]
    this.upload.resumeFromPreviousUpload(this.earlier)
  }

  start() {
    this.state = 'uploading'
    this.error = null
    this.rate.reset()
    this.startHash()
    this.upload.start()
    this.changed()
  }

  pause() {
    if (this.state !== 'uploading' && this.state !== 'queued') return
    this.upload.abort()
    this.state = 'paused'
    this.retrying = false
    this.changed()
    this.queue.pump()
  }

  // resume queues a paused or failed upload again; it continues from the
  // offset the server has stored.
  resume() {
    if (this.state !== 'paused' && this.state !== 'failed') return
    this.state = 'queued'
    this.changed()
    this.queue.pump()
  }

  // cancel stops the upload and deletes what the server stored of it.
  async cancel() {
    this.state = 'cancelled'
    this.stopHash()
    this.changed()
    this.queue.remove(this)
    await this.upload.abort(true).catch(() => {})
  }

  shouldRetry(err) {
    const status = err.originalResponse ? err.originalResponse.getStatus() : 0
    const retry = !finalStatuses.has(status) && (status < 400 || status >= 500 || status === 409 || status === 423)
    this.retrying = retry
    this.changed()
    return retry
  }

  afterResponse(req, res) {
    // A HEAD asks the server where the stored bytes end, before continuing.
    if (req.getMethod() === 'HEAD' && res.getStatus() === 200 && this.earlier && this.resumedFrom === null) {
      this.resumedFrom = Number(res.getHeader('Upload-Offset')) || 0
      this.sent = this.resumedFrom
      this.changed()
    }
  }

  progress(sent) {
    this.sent = sent
    this.retrying = false
    this.rate.add(sent)
    this.changed()
  }

  succeed() {
    this.state = 'done'
    this.sent = this.size
    this.retrying = false
    this.changed()
    this.queue.pump()
    this.queue.onFinished(this)
  }

  fail(err) {
    const refusal = tusError(err)
    this.state = 'failed'
    this.retrying = false
    this.error = refusal || err
    this.changed()
    this.queue.pump()
    if (refusal && (refusal.status === 401 || refusal.code === 'case_closed' || refusal.code === 'wrong_case')) {
      this.queue.onRefused(refusal)
    }
  }

  startHash() {
    if (this.hash.worker || this.hash.sha256) return
    // HASH_WORKER_URL is the worker's hashed file name, set by the build.
    const worker = new Worker(HASH_WORKER_URL)
    this.hash.worker = worker
    worker.onmessage = ({ data }) => {
      if (data.type === 'progress') this.hash.done = data.done
      if (data.type === 'done') {
        this.hash.sha256 = data.sha256
        this.hash.done = this.size
      }
      if (data.type === 'error') this.hash.error = data.message
      if (data.type !== 'progress') this.stopHash()
      this.changed()
    }
    worker.onerror = (e) => {
      this.hash.error = e.message || 'the hashing worker failed'
      this.stopHash()
      this.changed()
    }
    worker.postMessage({ file: this.file })
  }

  stopHash() {
    if (this.hash.worker) this.hash.worker.terminate()
    this.hash.worker = null
  }
}
