// Starts Debian's chromium for the pages' tests, through playwright-core
// (which brings no browser of its own): headless, in a fresh profile,
// without the background connections this machine's network refuses.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'

export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium'

const flags = [
  '--no-sandbox', // as root, chromium's sandbox cannot start
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

// launch returns a browser context with its own new profile; close() ends
// the browser and deletes the profile. Downloads go to downloadsPath when
// it is set (else a folder of playwright's own); either way they are
// deleted when the browser closes.
export async function launch({ viewport = { width: 1024, height: 768 }, downloadsPath } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'casedrop-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: flags,
    ignoreHTTPSErrors: true, // the test server's certificate is self-signed
    acceptDownloads: true,
    downloadsPath,
    viewport,
    locale: 'en-GB',
    timezoneId: 'UTC',
  })
  return {
    context,
    async close() {
      await context.close()
      fs.rmSync(profile, { recursive: true, force: true })
    },
  }
}

// readJob parses the JSON job the Go test writes to stdin.
export function readJob() {
  return JSON.parse(fs.readFileSync(0, 'utf8'))
}

// report prints the script's one JSON result for the Go test.
export function report(result) {
  process.stdout.write(JSON.stringify(result) + '\n')
}

// watch collects what must not happen on a page: uncaught errors,
// anything the Content-Security-Policy refused (an inline style, say), and
// requests anywhere but origin (a CDN, a web font).
export function watch(page, problems, origin) {
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => {
    if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(`CSP: ${msg.text()}`)
  })
  page.on('request', (req) => {
    const url = new URL(req.url())
    if (url.protocol !== 'data:' && url.protocol !== 'blob:' && url.origin !== origin) {
      problems.push(`a request outside ${origin}: ${req.method()} ${req.url()}`)
    }
  })
  return page
}

// uploadLimit returns a function that limits what the page sends to a
// number of bytes per second (0: no limit), through the DevTools protocol:
// it makes progress slow enough to look at, or to reload the page
// mid-way, without sleeping. The limit holds across reloads.
export async function uploadLimit(context, page) {
  const cdp = await context.newCDPSession(page)
  await cdp.send('Network.enable')
  return (bytesPerSecond) =>
    cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: bytesPerSecond || -1,
    })
}

// screenshot saves the whole page as dir/name, if dir is set.
export async function screenshot(page, dir, name) {
  if (!dir) return
  await page.screenshot({ path: path.join(dir, name), fullPage: true, animations: 'disabled', caret: 'hide' })
}

// ready waits until the page has loaded its case (body[data-ready]) or
// shows why it cannot (body[data-error]).
export async function ready(page) {
  await page.waitForSelector('body[data-ready], body[data-error]', { timeout: 15000 })
  return page.evaluate(() => ({ ready: !!document.body.dataset.ready, error: document.body.dataset.error || '' }))
}

// overflowAtZoom200 lays the page out as a browser zoomed to 200 % would
// (half the viewport's width in CSS pixels) and returns how many pixels
// of it stick out sideways: 0 when it reads without scrolling sideways.
export async function overflowAtZoom200(page) {
  const size = page.viewportSize()
  await page.setViewportSize({ width: Math.round(size.width / 2), height: Math.round(size.height / 2) })
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
}

// openPage opens url in a new page of browser, watched for problems, and
// waits until it has loaded its case.
export async function openPage(browser, url, problems) {
  const page = watch(await browser.context.newPage(), problems, new URL(url).origin)
  await page.goto(url)
  const state = await ready(page)
  if (!state.ready) throw new Error(`the page did not load its case: ${state.error}`)
  return page
}
