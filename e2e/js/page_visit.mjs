// Opens pages and reports what each shows: its case loaded, or the
// refusal it explains; the case's state; the files listed. A visit with
// "download" clicks that file's Download button on the case page and
// saves what the browser downloads in job.dir. Run by e2e/pages_test.go
// with a JSON job on stdin:
//
//   {"visits": [{"url": "...", "screenshot": "name.png or empty", "download": "name or empty"}],
//    "screenshots": "dir or empty", "dir": "where downloads go"}
import path from 'node:path'
import { launch, readJob, ready, report, screenshot, watch } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch()
try {
  const results = []
  for (const visit of job.visits) {
    const page = watch(await browser.context.newPage(), problems, new URL(visit.url).origin)
    await page.goto(visit.url)
    const state = await ready(page)
    const text = async (selector) => {
      const el = page.locator(selector)
      return (await el.count()) && (await el.isVisible()) ? el.innerText() : ''
    }
    const result = {
      url: visit.url,
      ...state,
      refusal: await text('#refusal'),
      closed: await text('#closed'),
      caseState: await text('#case-state'),
      sendVisible: await page.locator('#send').isVisible(),
      files: await page.$$eval('#case-files > li, #file-rows > tr', (els) => els.map((el) => el.dataset.name)),
      address: page.url(),
      downloaded: '',
    }
    if (visit.screenshot) await screenshot(page, job.screenshots, visit.screenshot)
    if (visit.download) {
      const item = page.locator(`#case-files > li[data-name="${visit.download}"]`)
      const [d] = await Promise.all([
        page.waitForEvent('download', { timeout: 30000 }),
        item.getByRole('button', { name: `Download ${visit.download}` }).click(),
      ])
      result.downloaded = path.join(job.dir, d.suggestedFilename())
      await d.saveAs(result.downloaded)
    }
    results.push(result)
    await page.close()
  }
  report({ results, problems })
} finally {
  await browser.close()
}
