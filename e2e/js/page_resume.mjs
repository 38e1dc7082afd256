// The case page: reload it in the middle of a large upload, choose the
// same file again, and let the upload continue from what the server had
// stored. Run by e2e/pages_test.go with a JSON job on stdin:
//
//   {"url": ".../cases/C#token=...", "file": "/path",
//    "limit": bytes per second before the reload, "reloadAt": 0.75,
//    "screenshots": "dir or empty"}
import { launch, openPage, readJob, ready, report, screenshot, uploadLimit } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch()
// sentOver is the share of the file sent, if more than min (else 0).
const sentOver = (min) => {
  const bar = document.querySelector('#upload-list > li progress')
  const sent = bar ? bar.value / bar.max : 0
  return sent > min ? sent : 0
}
try {
  const page = await openPage(browser, job.url, problems)
  const limit = await uploadLimit(browser.context, page)
  await limit(job.limit)
  await page.setInputFiles('#file-input', job.file)
  const reloadedAt = await (await page.waitForFunction(sentOver, job.reloadAt, { polling: 'raf', timeout: 60000 })).jsonValue()

  // The token went from the address bar into sessionStorage: the reload
  // loads the page without it.
  await page.reload()
  const again = await ready(page)
  if (!again.ready) throw new Error(`after the reload the page did not load its case: ${again.error}`)
  await page.waitForSelector('#unfinished-list > li', { timeout: 10000 })
  const unfinished = await page.$$eval('#unfinished-list > li', (lis) => lis.map((li) => li.innerText))
  await screenshot(page, job.screenshots, 'case-resume.png')

  await limit(0)
  await page.setInputFiles('#file-input', job.file)
  await page.waitForSelector('.digest.ok, .digest.bad, #upload-list > li[data-state="failed"]', { timeout: 60000 })
  const row = await page.$eval('#upload-list > li', (li) => ({
    state: li.dataset.state,
    resumedFrom: Number(li.dataset.resumedFrom),
    sha256: li.querySelector('.digest').dataset.sha256,
    verified: li.querySelector('.digest').classList.contains('ok'),
    text: li.innerText,
  }))
  const unfinishedAfter = await page.locator('#unfinished-list > li').count()
  report({ reloadedAt, unfinished, unfinishedAfter, row, problems })
} finally {
  await browser.close()
}
