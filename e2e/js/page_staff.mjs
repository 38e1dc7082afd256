// The staff page: read the list, then download one file with its button,
// two with "Download selected", and all as a zip. Run by
// e2e/pages_test.go with a JSON job on stdin:
//
//   {"url": ".../staff/cases/C#token=...", "one": "name",
//    "several": ["name", ...], "dir": "where downloads go",
//    "screenshots": "dir or empty"}
import path from 'node:path'
import { launch, openPage, overflowAtZoom200, readJob, report, screenshot } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch({ viewport: { width: 1280, height: 720 } })

// save waits for n downloads started by action and saves them in job.dir
// under their suggested names.
async function save(page, n, action) {
  const saved = []
  const all = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${saved.length} of ${n} downloads after 30 s`)), 30000)
    page.on('download', async (d) => {
      const file = path.join(job.dir, d.suggestedFilename())
      await d.saveAs(file)
      saved.push(file)
      if (saved.length === n) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  await action()
  await all
  page.removeAllListeners('download')
  return saved
}

try {
  const page = await openPage(browser, job.url, problems)
  const rows = await page.$$eval('#file-rows > tr', (trs) =>
    trs.map((tr) => ({
      name: tr.dataset.name,
      state: tr.dataset.state,
      sha256: tr.querySelector('.sum').dataset.sha256,
      text: tr.innerText,
    })),
  )
  const caseState = await page.locator('#case-state').innerText()
  await screenshot(page, job.screenshots, 'staff-files.png')

  const row = (name) => page.locator(`#file-rows > tr[data-name="${name}"]`)
  const one = await save(page, 1, () => row(job.one).getByRole('button', { name: `Download ${job.one}` }).click())
  for (const name of job.several) await row(name).getByRole('checkbox').check()
  const several = await save(page, job.several.length, () => page.locator('#download-selected').click())
  const zip = await save(page, 1, () => page.locator('#download-all').click())
  const sums = await save(page, 1, () => page.locator('#get-sums').click())
  const sig = await save(page, 1, () => page.locator('#get-sig').click())
  const sshsig = await save(page, 1, () => page.locator('#get-sshsig').click())
  const verifyLines = await page.locator('details.verify code').textContent()
  const overflow = await overflowAtZoom200(page)
  await screenshot(page, job.screenshots, 'staff-files-zoom200.png')
  report({ rows, caseState, one, several, zip, sums, sig, sshsig, verifyLines, overflow, problems })
} finally {
  await browser.close()
}
