// The case page and the staff page with a malware scanner: upload files,
// see each "checking for malware…", then (once the Go test starts the
// scanner) the clean one complete and the infected one blocked; then the
// staff page with the finding. Run by e2e/scan_pages_test.go with a JSON
// job on stdin:
//
//   {"url": ".../cases/C#token=...", "staffUrl": ".../staff/cases/C#token=...",
//    "files": ["/path", ...], "verdicts": {"name": "complete"|"quarantined"},
//    "checked": "file written once every upload shows the check",
//    "screenshots": "dir or empty"}
import fs from 'node:fs'
import { launch, openPage, readJob, report, screenshot } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch({ viewport: { width: 1280, height: 800 } })

// scanStates reads the malware check each upload row and each entry of
// "Files in this case" shows.
const scanStates = (page) =>
  page.evaluate(() => ({
    uploads: [...document.querySelectorAll('#upload-list > li')].map((li) => ({
      name: li.dataset.name,
      state: li.dataset.state,
      scan: li.dataset.scan || '',
      text: li.innerText,
    })),
    caseFiles: [...document.querySelectorAll('#case-files > li')].map((li) => ({
      name: li.dataset.name,
      state: li.dataset.state,
      download: !!li.querySelector('button'),
      text: li.innerText,
    })),
  }))

// untilScans waits until every upload row shows the wanted check.
const untilScans = (page, want, timeout) =>
  page.waitForFunction(
    (want) =>
      Object.entries(want).every(([name, scan]) => document.querySelector(`#upload-list > li[data-name="${name}"]`)?.dataset.scan === scan),
    want,
    { timeout },
  )

try {
  const page = await openPage(browser, job.url, problems)
  await page.setInputFiles('#file-input', job.files)
  const all = (scan) => Object.fromEntries(Object.keys(job.verdicts).map((name) => [name, scan]))
  await untilScans(page, all('scanning'), 60000)
  const checking = await scanStates(page)
  fs.writeFileSync(job.checked, 'checking\n')

  // No reload from here on: the page learns the results by itself.
  await untilScans(page, job.verdicts, 90000)
  const done = await scanStates(page)
  await screenshot(page, job.screenshots, 'case-quarantined.png')

  const staffPage = await openPage(browser, job.staffUrl, problems)
  const staff = await staffPage.$$eval('#file-rows > tr', (trs) =>
    trs.map((tr) => ({
      name: tr.dataset.name,
      state: tr.dataset.state,
      download: !tr.querySelector('.act button').hidden,
      selectable: !tr.querySelector('.pick input').disabled,
      text: tr.innerText,
    })),
  )
  await screenshot(staffPage, job.screenshots, 'staff-quarantined.png')
  report({ checking, done, staff, problems })
} finally {
  await browser.close()
}
