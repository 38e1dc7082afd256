// Builds the upload and staff pages into web/ui/dist, which the Go binary
// embeds (web/pages.go). Run from the repository root: `npm run build`
// (`make ui` does it when the sources change).
//
// dist/case.html and dist/staff.html name their script and style sheet
// under /ui/, with a hash of the content in the file name: the server
// caches those for good and revalidates the HTML, so a rebuilt bundle
// replaces the old one at the next page load.
import fs from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const ui = path.dirname(fileURLToPath(import.meta.url))
const src = path.join(ui, 'src')
const dist = path.join(ui, 'dist')
const assets = path.join(dist, 'assets')
const urlPrefix = '/ui/'

// Only the README stays: old hashed files would otherwise end up in the
// binary too.
for (const name of await fs.readdir(dist)) {
  if (name !== 'README') await fs.rm(path.join(dist, name), { recursive: true, force: true })
}

// build bundles each entry of src into dist/assets and returns the URL of
// each output by the entry's file name.
async function build(entries, options = {}) {
  const result = await esbuild.build({
    entryPoints: entries.map((e) => path.join(src, e)),
    outdir: assets,
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome109', 'firefox115', 'safari16'],
    metafile: true,
    logLevel: 'warning',
    ...options,
  })
  const urls = {}
  for (const [out, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint) urls[path.basename(meta.entryPoint)] = urlPrefix + path.basename(out)
  }
  return urls
}

// The worker first: the case page needs its (hashed) URL.
const worker = await build(['hash-worker.js'])
const bundles = await build(['case.js', 'staff.js', 'style.css'], {
  define: { HASH_WORKER_URL: JSON.stringify(worker['hash-worker.js']) },
})

for (const page of ['case', 'staff']) {
  const html = await fs.readFile(path.join(src, `${page}.html`), 'utf8')
  const filled = html
    .replace('%style%', bundles['style.css'])
    .replace('%script%', bundles[`${page}.js`])
  await fs.writeFile(path.join(dist, `${page}.html`), filled)
}

const sizes = await Promise.all(
  (await fs.readdir(assets)).map(async (f) => `${f} ${((await fs.stat(path.join(assets, f))).size / 1024).toFixed(1)} KiB`),
)
console.log(`web/ui/dist: case.html, staff.html, ${sizes.join(', ')}`)
