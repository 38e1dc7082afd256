// The credential and the calls the pages make with it.
//
// The credential arrives in the link's fragment (#token=...&password=...),
// which the browser never sends to a server: the token for the API and
// tus, the short SFTP password to show. The page keeps both in
// sessionStorage, for reloads of this tab, and removes them from the
// address bar so that they do not end up in a screenshot, a bookmark or a
// shared link.

// caseFromPath is the case named by the page's path (/cases/{case} or
// /staff/cases/{case}).
export function caseFromPath() {
  return decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '')
}

// takeCredential returns the token and the SFTP password of the link
// (the password is null for a link that carries none: one issued before
// short passwords, or cut short).
export function takeCredential(caseId) {
  const keys = { token: `casedrop.token.${caseId}`, password: `casedrop.password.${caseId}` }
  const link = new URLSearchParams(location.hash.slice(1))
  if (link.get('token')) {
    sessionStorage.setItem(keys.token, link.get('token'))
    // A new link replaces the whole credential: no password of an older one.
    if (link.get('password')) sessionStorage.setItem(keys.password, link.get('password'))
    else sessionStorage.removeItem(keys.password)
    history.replaceState(history.state, '', location.pathname + location.search)
  }
  return { token: sessionStorage.getItem(keys.token), password: sessionStorage.getItem(keys.password) }
}

// ApiError is a refusal from the server: its status and its JSON code.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

// apiErrorFrom reads casedrop's {"error", "code"} body of a failed answer.
export function apiErrorFrom(status, bodyText) {
  let body = {}
  try {
    body = JSON.parse(bodyText)
  } catch {
    // not JSON: a proxy's page, say
  }
  return new ApiError(status, body.code || `http_${status}`, body.error || `the server answered ${status}`)
}

export class Client {
  constructor(caseId, token) {
    this.caseId = caseId
    this.token = token
  }

  get headers() {
    return { Authorization: `Bearer ${this.token}` }
  }

  caseURL(suffix = '') {
    return `/api/v1/cases/${encodeURIComponent(this.caseId)}${suffix}`
  }

  fileURL(name) {
    return this.caseURL(`/files/${encodeURIComponent(name)}`)
  }

  // fetch sends an authenticated request and fails with an ApiError on
  // any answer but 2xx.
  async fetch(url, options = {}) {
    const res = await fetch(url, { cache: 'no-store', ...options, headers: { ...this.headers, ...options.headers } })
    if (!res.ok) throw apiErrorFrom(res.status, await res.text())
    return res
  }

  async json(url) {
    return (await this.fetch(url)).json()
  }

  whoami() {
    return this.json('/api/v1/whoami')
  }

  async files() {
    return (await this.json(this.caseURL('/files'))).files
  }
}

// What each refusal means to the person holding the link, plainly.
const meanings = {
  no_token: [
    'This page needs your personal link',
    'Open the link that support sent you: it holds “#token=” and a long code. If you no longer have it, ask support for a new one.',
  ],
  invalid_credential: [
    'This link is not valid',
    'The link may be incomplete or altered. Copy the whole link from the message support sent you, or ask support for a new one.',
  ],
  credential_expired: [
    'This link has expired',
    'Links work for a few days only. Ask support for a new link: unfinished uploads continue with it.',
  ],
  credential_revoked: [
    'This link no longer works',
    'It was withdrawn, usually because the case was closed. If you still need to send files, contact support.',
  ],
  case_closed: ['This case is closed', 'It no longer accepts files. If you still need to send files, contact support.'],
  wrong_case: ['This link is for another case', 'Open the link that support sent you for this case.'],
  not_found: ['This case does not exist', 'Check the link, or ask support for a new one.'],
  too_many_attempts: ['Too many attempts', 'Wait a minute, then reload the page.'],
}

// explain turns an error into a title and an explanation for the page.
export function explain(err) {
  const known = err instanceof ApiError && meanings[err.code]
  if (known) return { title: known[0], text: known[1], code: err.code }
  if (err instanceof ApiError) {
    return { title: 'The server refused the request', text: `${err.message} (${err.code})`, code: err.code }
  }
  return {
    title: 'The server cannot be reached',
    text: 'Check your connection, then reload the page.',
    code: 'network',
  }
}

export function noTokenError() {
  return new ApiError(0, 'no_token', 'no credential')
}
