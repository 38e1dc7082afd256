// The case page, /cases/{case}: the customer drops files and watches them
// upload; unfinished uploads continue after a reload; the files of the
// case, and the temporary SFTP account, are listed.
import { announce, $ } from './lib/dom.js'
import { day } from './lib/format.js'
import { openCase, ready, showAlert, showRefusal } from './lib/page.js'
import { renderCaseFiles } from './case/files.js'
import { Parent } from './case/parent.js'
import { renderSFTP } from './case/sftp.js'
import { Unfinished } from './case/unfinished.js'
import { UploadQueue } from './case/uploads.js'
import { UploadList, serverEntry } from './case/view.js'

// How often, at most, the page asks for a finished upload's entry in the
// case's list before it gives up showing the server's digest.
const entryTries = 10
// While the malware check of a file is under way, the list is fetched
// again this often (ms), so that its result shows without a reload.
const scanPollEvery = 2000

async function main() {
  const opened = await openCase('casedrop')
  if (!opened) return
  const { client, me, token, password } = opened
  const caseId = client.caseId
  // The portal that frames the page, if any, hears how uploads go.
  const parent = new Parent(caseId)
  renderSFTP(me, token, password)

  const files = new CaseFiles(client, me.username)
  if (me.case_state !== 'open') {
    $('#closed').hidden = false
    $('#closed-text').textContent = me.purge_at
      ? `It no longer accepts files. The files below are kept until ${day(me.purge_at)}.`
      : 'It no longer accepts files.'
    $('#send').hidden = true
    await files.refresh()
    ready()
    parent.ready()
    return
  }

  const queue = new UploadQueue({
    caseId,
    token,
    // The queue reports changes only once files are added, after changed is set.
    onChange: (item) => changed(item),
    onFinished: () => files.refresh(),
    onRefused: (err) => showAlert(err),
  })
  const view = new UploadList(queue)
  const changed = (item) => {
    view.changed(item)
    parent.changed(item)
  }
  files.queue = queue
  files.changed = changed

  const unfinished = new Unfinished(caseId, token)
  const add = async (picked) => {
    const items = await queue.add(picked)
    for (const item of items) if (item.earlier) unfinished.forget(item.earlier.urlStorageKey)
    if (items.length) announce(`${items.length} ${items.length === 1 ? 'file' : 'files'} added`)
  }
  wirePicker(add)
  await Promise.all([unfinished.load(), files.refresh()])
  ready()
  parent.ready()
}

// CaseFiles keeps the case's file list: shown in "Files in this case",
// and where finished uploads find the digest the server computed and the
// result of the malware check.
class CaseFiles {
  constructor(client, username) {
    this.client = client
    this.username = username
    this.queue = null
    this.changed = null // tells the page an item has its entry
    this.timer = null
    this.waiting = []
    this.tries = 0
    $('#refresh-files').addEventListener('click', () => this.refresh())
  }

  // refresh reloads the list, once for a burst of calls; it resolves
  // when the list is shown.
  refresh() {
    clearTimeout(this.timer)
    return new Promise((resolve) => {
      this.waiting.push(resolve)
      this.timer = setTimeout(async () => {
        const waiting = this.waiting
        this.waiting = []
        await this.load()
        for (const resolve of waiting) resolve()
      }, 200)
    })
  }

  async load() {
    let files
    try {
      files = await this.client.files()
    } catch (err) {
      showAlert(err)
      return
    }
    renderCaseFiles(this.client, files, this.username)
    if (files.some((f) => f.state === 'scanning')) setTimeout(() => this.refresh(), scanPollEvery)
    if (!this.queue) return
    let missing = false
    for (const item of this.queue.items) {
      if (item.state !== 'done') continue
      const entry = serverEntry(files, item, this.username)
      if (entry !== item.server) {
        item.server = entry
        this.changed(item)
      }
      missing ||= !entry
    }
    // A finished upload shows up in the list once committed: ask again.
    this.tries = missing ? this.tries + 1 : 0
    if (missing && this.tries < entryTries) setTimeout(() => this.refresh(), 1000)
  }
}

function wirePicker(add) {
  const input = $('#file-input')
  $('#choose').addEventListener('click', () => input.click())
  input.addEventListener('change', () => {
    add([...input.files])
    input.value = ''
  })
  const zone = $('#drop')
  // Dropping anywhere on the page adds the files; the zone shows where.
  document.addEventListener('dragover', (e) => {
    e.preventDefault()
    zone.classList.add('over')
  })
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) zone.classList.remove('over')
  })
  document.addEventListener('drop', (e) => {
    e.preventDefault()
    zone.classList.remove('over')
    const files = []
    let folders = 0
    for (const entry of e.dataTransfer.items) {
      if (entry.kind !== 'file') continue
      if (entry.webkitGetAsEntry?.()?.isDirectory) folders++
      else files.push(entry.getAsFile())
    }
    if (folders) announce('Folders cannot be uploaded: drop the files in them, or a zip of the folder')
    $('#drop-note').textContent = folders ? 'Folders cannot be uploaded: drop the files in them, or a zip of the folder.' : ''
    add(files)
  })
}

main().catch((err) => showRefusal(err))
