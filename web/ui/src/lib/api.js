// The credential and the calls the pages make with it.
//
// The credential arrives in the link's fragment (#token=...&password=...),
// which the browser never sends to a server: the token for the API and
// tus, the short SFTP password to show. The page keeps both in
// sessionStorage, for reloads of this tab, and removes them from the
// address bar so that they do not end up in a screenshot, a bookmark or a
// shared link.
//
// A case page the case system frames in its portal gets an upload link
// instead (#link=CODE): the page trades the code for a credential of its
// own, once, so that the credential never passes through the portal's page.

// caseFromPath is the case named by the page's path (/cases/{case} or
// /staff/cases/{case}).
export function caseFromPath() {
  return decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '')
}

// takeCredential returns the token and the SFTP password of the link
// (the password is null for a link that carries none: one issued before
// short passwords, or cut short). An upload link is redeemed first; its
// refusal (used, expired, unknown) is thrown as an ApiError.
export async function takeCredential(caseId) {
  const keys = { token: `casedrop.token.${caseId}`, password: `casedrop.password.${caseId}` }
  const link = new URLSearchParams(location.hash.slice(1))
  const [token, code] = [link.get('token'), link.get('link')]
  // Out of the address bar first: a reload must not redeem a code twice.
  if (token || code) history.replaceState(history.state, '', location.pathname + location.search)
  let fresh = token ? { token, password: link.get('password') } : null
  if (!token && code) fresh = await redeemLink(caseId, code)
  if (fresh) {
    tabStorage.setItem(keys.token, fresh.token)
    // A new link replaces the whole credential: no password of an older one.
    if (fresh.password) tabStorage.setItem(keys.password, fresh.password)
    else tabStorage.removeItem(keys.password)
  }
  return { token: tabStorage.getItem(keys.token), password: tabStorage.getItem(keys.password) }
}

// tabStorage is the tab's sessionStorage, or else, where the browser
// refuses storage to a page framed by another site (third-party storage
// blocked), a store for the life of the page: the credential of a link
// redeemed there lasts until a reload, which needs a new link.
const tabStorage = (() => {
  try {
    sessionStorage.getItem('casedrop')
    return sessionStorage
  } catch {
    const items = new Map()
    return {
      getItem: (key) => (items.has(key) ? items.get(key) : null),
      setItem: (key, value) => items.set(key, String(value)),
      removeItem: (key) => items.delete(key),
    }
  }
})()

// redeemLink trades an upload link's code for a new credential. The
// server takes it only from its own pages, which a browser names in the
// request's Origin. The pages send no referrer, and under that policy the
// Fetch standard sends "Origin: null" with a POST, which the server
// refuses: this request's own policy names the page's origin, and only
// to its own server.
async function redeemLink(caseId, code) {
  const res = await fetch('/api/v1/links/redeem', {
    method: 'POST',
    cache: 'no-store',
    referrerPolicy: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ case: caseId, code }),
  })
  if (!res.ok) throw apiErrorFrom(res.status, await res.text())
  return res.json()
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
  // An upload link (#link=) opens the page once, within minutes.
  link_used: [
    'This link has already been used',
    'It opens the page once. If it is open in another window, continue there; otherwise reload the page you came from for a new link, or ask support for one.',
  ],
  link_expired: [
    'This link has expired',
    'It works for a few minutes only. Reload the page you came from for a new link, or ask support for one.',
  ],
  link_not_found: [
    'This link is not valid',
    'The link may be incomplete or altered. Reload the page you came from for a new link, or ask support for one.',
  ],
  cross_origin: ['This page cannot be opened this way', 'Open your link directly in the browser, or ask support for a new one.'],
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
