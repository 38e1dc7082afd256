// The case page: choose several files at once, watch them upload, and
// read back the digests and check marks the page shows. Run by
// e2e/pages_test.go with a JSON job on stdin:
//
//   {"url": ".../cases/C#token=...", "files": ["/path", ...],
//    "limit": bytes per second while the uploads are screenshot,
//    "screenshots": "dir or empty"}
import { launch, openPage, overflowAtZoom200, readJob, report, screenshot, uploadLimit } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch()
try {
  const page = await openPage(browser, job.url, problems)
  await screenshot(page, job.screenshots, 'case-empty.png')

  const limit = await uploadLimit(browser.context, page)
  await limit(job.limit)
  await page.setInputFiles('#file-input', job.files)
  // Mid-way: every file listed, about a third of the bytes sent.
  await page.waitForFunction(
    (n) => {
      const total = document.querySelector('#total-progress')
      return document.querySelectorAll('#upload-list > li').length === n && total.value / total.max > 0.3
    },
    job.files.length,
    { polling: 'raf', timeout: 30000 },
  )
  const midway = await page.locator('#upload-list > li[data-state="uploading"]').count()
  await screenshot(page, job.screenshots, 'case-uploading.png')
  await limit(0)

  await page.waitForFunction(
    (n) => document.querySelectorAll('.digest.ok').length === n || document.querySelector('.digest.bad, [data-state="failed"]'),
    job.files.length,
    { timeout: 60000 },
  )
  const rows = await page.$$eval('#upload-list > li', (lis) =>
    lis.map((li) => {
      const digest = li.querySelector('.digest')
      return {
        name: li.dataset.name,
        state: li.dataset.state,
        sha256: digest.dataset.sha256,
        verified: digest.classList.contains('ok') && !!digest.querySelector('.check'),
        text: li.innerText,
      }
    }),
  )
  const caseFiles = await page.$$eval('#case-files > li', (lis) => lis.map((li) => li.dataset.name))
  await screenshot(page, job.screenshots, 'case-done.png')
  const overflow = await overflowAtZoom200(page)
  report({ rows, midway, caseFiles, overflow, problems })
} finally {
  await browser.close()
}
