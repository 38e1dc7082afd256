// "Files in this case": every file of the case, the customer's own and
// those support put into the case for them; complete ones downloadable,
// the others saying that the malware check is under way or blocked them.
import { explain } from '../lib/api.js'
import { announce, h, $ } from '../lib/dom.js'
import { fileDownload, startDownloads } from '../lib/download.js'
import { bytes, timeEl } from '../lib/format.js'

// The states listed, and what the customer reads of the malware check.
const listed = new Set(['complete', 'scanning', 'quarantined'])
export const scanText = {
  scanning: 'checking for malware…',
  quarantined: 'blocked by the malware check: it cannot be downloaded, and support has been told',
}

export function renderCaseFiles(client, files, username) {
  const shown = files.filter((f) => listed.has(f.state))
  const list = $('#case-files')
  $('#case-files-empty').hidden = shown.length > 0
  list.hidden = shown.length === 0
  list.replaceChildren(
    ...shown.map((f) => {
      const from = f.uploaded_by === username ? 'you' : f.uploaded_by
      return h(
        'li',
        { 'data-name': f.name, 'data-state': f.state },
        h('span', { class: 'name' }, f.name),
        ' ',
        h('span', { class: 'detail' }, `${bytes(f.size)}, from ${from}, `, timeEl(f.uploaded_at)),
        ' ',
        ...(f.state === 'complete' ? downloadButton(client, f) : [h('span', { class: `scan ${f.state}` }, scanText[f.state])]),
      )
    }),
  )
}

function downloadButton(client, f) {
  const status = h('span', { class: 'detail', 'aria-live': 'polite' })
  const button = h('button', { type: 'button', class: 'small', 'aria-label': `Download ${f.name}` }, 'Download')
  button.addEventListener('click', () => fetchFile(client, f, button, status))
  return [button, ' ', status]
}

// fetchFile hands the file's download to the browser, which shows its
// progress in its own list.
async function fetchFile(client, f, button, status) {
  button.disabled = true
  try {
    await startDownloads(client, [fileDownload(f.name)])
    status.textContent = 'Downloading: your browser shows the progress.'
    announce(`Downloading ${f.name}`)
  } catch (err) {
    const { title, text } = explain(err)
    status.textContent = `${title}: ${text}`
  } finally {
    button.disabled = false
  }
}
