// The states a page shows as a whole: loading, refused (a bad link, an
// expired credential, a closed case), or its content; and an alert above
// the content when something goes wrong later.
import { ApiError, Client, caseFromPath, explain, noTokenError, takeCredential } from './api.js'
import { $, h } from './dom.js'
import { dateTime } from './format.js'

// openCase starts a page: it takes the credential from the link, asks the
// server who it is, and shows who is signed in. It returns the client, the
// credential's details, its token and its SFTP password (null if the link
// had none), or null once it has shown why the page cannot open.
export async function openCase(title) {
  const caseId = caseFromPath()
  document.title = `Case ${caseId} · ${title}`
  $('#case-id').textContent = caseId
  let credential
  try {
    credential = await takeCredential(caseId)
  } catch (err) {
    return refuse(err) // an upload link refused
  }
  const { token, password } = credential
  if (!token) return refuse(noTokenError())
  const client = new Client(caseId, token)
  let me
  try {
    me = await client.whoami()
  } catch (err) {
    return refuse(err)
  }
  if (me.case !== caseId) return refuse(new ApiError(403, 'wrong_case', 'credential is for another case'))
  $('#who').textContent = `Signed in as ${me.username} (${me.role}) · link valid until ${dateTime(me.expires_at)}`
  showPage()
  return { client, me, token, password }
}

function refuse(err) {
  showRefusal(err)
  return null
}

// ready marks the page as loaded (the browser tests wait for it).
export function ready() {
  document.body.dataset.ready = 'true'
}

// showRefusal replaces the page's content by what went wrong, plainly.
export function showRefusal(err) {
  const { title, text, code } = explain(err)
  $('#loading').hidden = true
  $('#content').hidden = true
  const refusal = $('#refusal')
  refusal.replaceChildren(h('h2', {}, title), h('p', {}, text))
  refusal.hidden = false
  document.body.dataset.error = code
  document.title = `${title} · casedrop`
}

export function showPage() {
  $('#loading').hidden = true
  $('#content').hidden = false
}

// showAlert puts err above the content, which stays usable.
export function showAlert(err) {
  const { title, text, code } = explain(err)
  const alert = $('#alert')
  alert.replaceChildren(h('strong', {}, title), ` ${text}`)
  alert.hidden = false
  alert.dataset.code = code
}
