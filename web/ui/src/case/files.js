// "Files in this case": every complete file, the customer's own and those
// support put into the case for them, each downloadable.
import { explain } from '../lib/api.js'
import { announce, h, $ } from '../lib/dom.js'
import { fileDownload, startDownloads } from '../lib/download.js'
import { bytes, timeEl } from '../lib/format.js'

export function renderCaseFiles(client, files, username) {
  const complete = files.filter((f) => f.state === 'complete')
  const list = $('#case-files')
  $('#case-files-empty').hidden = complete.length > 0
  list.hidden = complete.length === 0
  list.replaceChildren(
    ...complete.map((f) => {
      const status = h('span', { class: 'detail', 'aria-live': 'polite' })
      const button = h('button', { type: 'button', class: 'small', 'aria-label': `Download ${f.name}` }, 'Download')
      button.addEventListener('click', () => fetchFile(client, f, button, status))
      const from = f.uploaded_by === username ? 'you' : f.uploaded_by
      return h(
        'li',
        { 'data-name': f.name },
        h('span', { class: 'name' }, f.name),
        ' ',
        h('span', { class: 'detail' }, `${bytes(f.size)}, from ${from}, `, timeEl(f.uploaded_at)),
        ' ',
        button,
        ' ',
        status,
      )
    }),
  )
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
