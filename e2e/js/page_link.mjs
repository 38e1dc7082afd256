// The case page opened with an upload link (#link=CODE), as the case
// system's portal frames it: the page redeems the link, uploads a file and
// keeps working after a reload; the same link in a fresh browser is
// refused as used. Run by e2e/pages_test.go with a JSON job on stdin:
//
//   {"url": ".../cases/C#link=...", "file": "/path"}
import { launch, openPage, readJob, ready, report, watch } from './browser.mjs'

const job = readJob()
const problems = []
const result = {}
const browser = await launch()
try {
  const page = await openPage(browser, job.url, problems)
  result.address = page.url()
  await page.setInputFiles('#file-input', [job.file])
  await page.waitForFunction(() => document.querySelector('.digest.ok, .digest.bad, [data-state="failed"]'), null, { timeout: 60000 })
  result.row = await page.$eval('#upload-list > li', (li) => {
    const digest = li.querySelector('.digest')
    return { state: li.dataset.state, sha256: digest.dataset.sha256, verified: digest.classList.contains('ok'), text: li.innerText }
  })
  await page.reload()
  result.reloaded = await ready(page)
  result.reloadedFiles = await page.$$eval('#case-files > li', (lis) => lis.map((li) => li.dataset.name))
} finally {
  await browser.close()
}

// A fresh browser shares nothing with the first: the link is all it has.
const fresh = await launch()
try {
  const page = watch(await fresh.context.newPage(), problems, new URL(job.url).origin)
  await page.goto(job.url)
  result.again = { ...(await ready(page)), refusal: await page.locator('#refusal').innerText(), address: page.url() }
} finally {
  await fresh.close()
}
report({ ...result, problems })
