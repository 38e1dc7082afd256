// Opens case pages and reports their "Temporary SFTP account" as a
// customer reads it: the fields (the password revealed with its Show
// button), whether the note about a link without a short password shows,
// and the text of the clients' instructions. Run by e2e/pages_test.go
// with a JSON job on stdin:
//
//   {"visits": [{"url": "..."}]}
//
// Each visit is a new tab, so that nothing of an earlier link is kept.
import { launch, openPage, readJob, report } from './browser.mjs'

const job = readJob()
const problems = []
const browser = await launch()
try {
  const results = []
  for (const visit of job.visits) {
    const page = await openPage(browser, visit.url, problems)
    const field = (label) =>
      page.locator('#sftp-account > div').filter({ has: page.locator('dt', { hasText: label }) }).locator('dd code').first().innerText()
    await page.getByRole('button', { name: 'Show' }).click()
    const section = page.locator('#sftp')
    // The clients' instructions are folded: open them to read them.
    for (const summary of await section.locator('summary').all()) await summary.click()
    results.push({
      address: page.url(),
      host: await field('Host'),
      port: await field('Port'),
      username: await field('Username'),
      password: await page.locator('#sftp-password').innerText(),
      tokenNote: (await page.locator('#sftp-token-note').isVisible()) ? await page.locator('#sftp-token-note').innerText() : '',
      instructions: await section.innerText(),
    })
    await page.close()
  }
  report({ results, problems })
} finally {
  await browser.close()
}
