// The staff page hands a multi-GB file, then the case's zip while the file
// still downloads, to the browser's download manager. Run by
// e2e/pages_download_test.go with a JSON job on stdin:
//
//   {"url": ".../staff/cases/C#token=...", "file": "name", "dir": "downloads folder"}
//
// It reports for each download when its download event came and when it
// was complete (milliseconds since the epoch, as the server logs times),
// the SHA-256 of what the browser saved (read as a stream), its URL, and
// the most memory the page's JavaScript used meanwhile (DevTools'
// Runtime.getHeapUsage: the heap and array buffers' backing storage,
// sampled every 100 ms).
import crypto from 'node:crypto'
import fs from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { launch, openPage, readJob, report } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch({ viewport: { width: 1280, height: 720 }, downloadsPath: job.dir })

async function sha256(path) {
  const h = crypto.createHash('sha256')
  await pipeline(fs.createReadStream(path, { highWaterMark: 4 << 20 }), h)
  return h.digest('hex')
}

try {
  const page = await openPage(browser, job.url, problems)
  const cdp = await browser.context.newCDPSession(page)
  const heap = { max: 0, backing: 0, samples: 0 }
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      // The V8 heap, and the memory held outside it for array buffers
      // (where a page's fetched bytes would sit).
      const { usedSize, backingStorageSize = 0 } = await cdp.send('Runtime.getHeapUsage')
      heap.max = Math.max(heap.max, usedSize + backingStorageSize)
      heap.backing = Math.max(heap.backing, backingStorageSize)
      heap.samples++
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()

  // start clicks a button and returns its download once the browser has
  // it, with the time of its download event.
  async function start(button) {
    const event = page.waitForEvent('download', { timeout: 30000 })
    const clickedAt = Date.now()
    await button.click()
    const download = await event
    return { download, clickedAt, startedAt: Date.now() }
  }
  const row = page.locator(`#file-rows > tr[data-name="${job.file}"]`)
  const file = await start(row.getByRole('button', { name: `Download ${job.file}` }))
  const zip = await start(page.locator('#download-all'))
  const status = await page.locator('#download-status').innerText()

  // Both complete, then the heap's sampling stops, then the hashing.
  const saved = await Promise.all(
    [file, zip].map(async ({ download, clickedAt, startedAt }) => {
      const path = await download.path()
      return { download, path, clickedAt, startedAt, finishedAt: Date.now() }
    }),
  )
  sampling = false
  await sampler
  const downloads = await Promise.all(
    saved.map(async ({ download, path, clickedAt, startedAt, finishedAt }) => ({
      name: download.suggestedFilename(),
      url: download.url(),
      clickedAt,
      startedAt,
      finishedAt,
      size: fs.statSync(path).size,
      sha256: await sha256(path),
    })),
  )
  report({ downloads, heapMax: heap.max, heapBacking: heap.backing, heapSamples: heap.samples, status, problems })
} finally {
  await browser.close()
}
