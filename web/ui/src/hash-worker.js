// Computes a file's SHA-256 off the page's thread, while it uploads: the
// page posts a File, the worker reads it a chunk at a time (a file of many
// gigabytes is never in memory) and posts its progress, then the digest.
import { createSHA256 } from 'hash-wasm'

const chunkSize = 8 << 20
const progressEveryMs = 250

self.onmessage = async ({ data: { file } }) => {
  try {
    const sha256 = await createSHA256()
    sha256.init()
    let reported = 0
    for (let offset = 0; offset < file.size; offset += chunkSize) {
      const chunk = await file.slice(offset, offset + chunkSize).arrayBuffer()
      sha256.update(new Uint8Array(chunk))
      const now = performance.now()
      if (now - reported > progressEveryMs) {
        self.postMessage({ type: 'progress', done: Math.min(offset + chunkSize, file.size) })
        reported = now
      }
    }
    self.postMessage({ type: 'done', sha256: sha256.digest('hex') })
  } catch (err) {
    // NotReadableError: the file changed or went away since it was chosen.
    self.postMessage({ type: 'error', message: err && err.message ? err.message : String(err) })
  }
}
