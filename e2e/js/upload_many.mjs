// Uploads several files at once with tus-js-client, as the case page does,
// and prints one JSON report on stdout. Run by the Go e2e tests:
//
//   node upload_many.mjs < job.json
//
// job.json: {"endpoint": "https://127.0.0.1:P/files/", "token": "...",
//            "files": [{"path": "...", "name": "...", "sha256": "hex or empty"}],
//            "chunkSize": bytes per PATCH (optional; default: the whole file)}
//
// The input is an fs.ReadStream of the file's path: tus-js-client 4.3.1 turns
// a ReadStream that has a path into a FileSource, which reads each request's
// range from the file on disk, so no chunkSize is needed and a large file is
// never held in memory (a plain Readable would need chunkSize and buffers a
// chunk; a Buffer holds the whole file).
import fs from 'node:fs'
import { Upload } from 'tus-js-client'

const job = JSON.parse(fs.readFileSync(0, 'utf8'))

function uploadOne(file) {
  const report = { name: file.name, url: null, ok: false, error: null, retries: 0, headOffsets: [], patches: 0 }
  return new Promise((resolve) => {
    const metadata = { filename: file.name }
    if (file.sha256) metadata.sha256 = file.sha256
    const options = {
      endpoint: job.endpoint,
      headers: { Authorization: `Bearer ${job.token}` },
      metadata,
      uploadSize: fs.statSync(file.path).size,
      retryDelays: [0, 200, 500, 1000],
      // tus-js-client's default rule (retry unless 4xx other than 409/423),
      // counting the retries for the report.
      onShouldRetry(err) {
        const status = err.originalResponse ? err.originalResponse.getStatus() : 0
        const retry = !(status >= 400 && status < 500) || status === 409 || status === 423
        if (retry) report.retries++
        return retry
      },
      onAfterResponse(req, res) {
        if (req.getMethod() === 'HEAD') report.headOffsets.push(Number(res.getHeader('Upload-Offset')))
        if (req.getMethod() === 'PATCH') report.patches++
      },
      onSuccess() {
        report.url = upload.url
        report.ok = true
        resolve(report)
      },
      onError(err) {
        report.url = upload.url
        report.error = String(err)
        resolve(report)
      },
    }
    if (job.chunkSize) options.chunkSize = job.chunkSize
    const upload = new Upload(fs.createReadStream(file.path), options)
    upload.start()
  })
}

const results = await Promise.all(job.files.map(uploadOne))
process.stdout.write(JSON.stringify({ results }) + '\n')
process.exitCode = results.every((r) => r.ok) ? 0 : 1
