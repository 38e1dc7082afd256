// A case system's portal page, served by e2e/embed_test.go from another
// origin than casedrop's, either framing casedrop's case page or uploading
// with its own tus client. JSON job on stdin:
//
//   {"mode": "iframe" | "tus", "portal": "http://127.0.0.1:P/page.html",
//    "files": ["/path", ...], "token": "... (tus mode)",
//    "download": "a file to download in the frame once uploaded (iframe mode)",
//    "dir": "where it goes",
//    "expectRefusal": false, "limit": bytes per second before the reload,
//    "reloadAt": 0.3, "screenshots": "dir or empty"}
import path from 'node:path'
import { launch, readJob, report, screenshot, uploadLimit } from './browser.mjs'

const job = readJob()
const browser = await launch({ viewport: { width: 1100, height: 900 } })
const consoleLines = []
try {
  const page = await browser.context.newPage()
  page.on('console', (msg) => consoleLines.push(msg.text()))
  page.on('pageerror', (err) => consoleLines.push(`page error: ${err.message}`))
  await page.goto(job.portal)
  const result = job.mode === 'iframe' ? await framed(page) : await ownClient(page)
  report({ ...result, console: consoleLines })
} finally {
  await browser.close()
}

// framed: the portal frames the case page; the test puts files into the
// frame and collects the events the frame posts to the portal.
async function framed(page) {
  if (job.expectRefusal) {
    // The browser refuses the frame: its document never becomes the case
    // page. Wait for the frame's load, whatever it loaded.
    await page.waitForFunction(() => window.frameLoaded === true, null, { timeout: 15000 })
    const frame = page.frames().find((f) => f !== page.mainFrame())
    const caseLoaded = frame ? await frame.evaluate(() => !!document.querySelector('#file-input')).catch(() => false) : false
    return { caseLoaded, frameURL: frame ? frame.url() : '', events: await page.evaluate(() => window.events) }
  }
  await page.waitForFunction(() => window.events.some((e) => e.type === 'ready'), null, { timeout: 15000 })
  const frame = page.frames().find((f) => f.url().includes('/cases/'))
  await frame.setInputFiles('#file-input', job.files)
  const done = (n) => window.events.filter((e) => e.type === 'upload-completed' || e.type === 'upload-failed').length >= n
  await page.waitForFunction(done, job.files.length, { timeout: 60000 })
  await screenshot(page, job.screenshots, 'embedded.png')
  return { events: await page.evaluate(() => window.events), frameURL: frame.url(), downloaded: await download(page, frame) }
}

// download clicks job.download's Download button in the frame, and saves
// what the browser downloads in job.dir.
async function download(page, frame) {
  if (!job.download) return ''
  const button = frame.getByRole('button', { name: `Download ${job.download}` })
  await button.waitFor({ timeout: 15000 })
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 30000 }), button.click()])
  const saved = path.join(job.dir, d.suggestedFilename())
  await d.saveAs(saved)
  return saved
}

// ownClient: the portal uploads with tus-js-client, cross-origin, with the
// credential's token; interrupted by a reload, it resumes the same upload.
async function ownClient(page) {
  if (job.expectRefusal) {
    await page.setInputFiles('#file', job.files[0])
    const outcome = await page.evaluate((token) => window.upload(token), job.token)
    return { outcome }
  }
  const limit = await uploadLimit(browser.context, page)
  await limit(job.limit)
  await page.setInputFiles('#file', job.files[0])
  page.evaluate((token) => window.upload(token), job.token).catch(() => {}) // cut short by the reload
  await page.waitForFunction((at) => window.sent > at || window.failed, job.reloadAt, { polling: 100, timeout: 60000 })
  const failed = await page.evaluate(() => window.failed)
  if (failed) return { outcome: { ok: false, error: `before the reload: ${failed}` } }
  const interruptedAt = await page.evaluate(() => window.sent)
  await page.reload()
  await limit(0)
  await page.setInputFiles('#file', job.files[0])
  const outcome = await page.evaluate((token) => window.upload(token), job.token)
  return { interruptedAt, outcome }
}
