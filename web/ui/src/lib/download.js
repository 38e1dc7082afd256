// Downloads go to the browser's own download manager, which streams them
// to disk whatever their size, shows their progress at once, pauses and
// resumes them and runs several side by side. It sends no Authorization
// header, so the page first has its credential mint a download link for
// each download (a JWT in the URL's query string, good for one download
// of this case for a few minutes), then follows each with a link click.
// No byte of a download passes through the page.

// Links minted in one request at most (the server's bound).
const perRequest = 100

// startDownloads mints a link for each download ("files/NAME",
// "archive.zip", "SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.sshsig") and
// hands each to the browser. It resolves once the browser has them; a
// refusal to mint (a file gone, the credential expired) is thrown as an
// ApiError before any download starts.
export async function startDownloads(client, downloads) {
  const links = []
  for (let i = 0; i < downloads.length; i += perRequest) {
    const res = await client.fetch(client.caseURL('/download-links'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ downloads: downloads.slice(i, i + perRequest) }),
    })
    links.push(...(await res.json()).links)
  }
  for (const link of links) follow(link.url)
  return links.length
}

// follow lets the browser download url. A link with the download
// attribute saves what it fetches instead of showing it, and a refusal
// (an expired link, the store unavailable) ends as a failed download in
// the browser's list, not as a page in place of this one. Chromium cancels
// such a download in a frame of another site, though (a portal framing
// the case page): there the link opens in a new tab, which the browser
// turns into the download and closes, and which shows a refusal instead
// of this page. Only the link's path and query are taken, so that the
// page fetches from the origin it came from.
function follow(url) {
  const u = new URL(url, location.href)
  const a = document.createElement('a')
  a.href = u.pathname + u.search
  if (framedByAnotherOrigin()) {
    a.target = '_blank'
  } else {
    a.download = '' // the server names the file (Content-Disposition)
  }
  a.rel = 'noopener noreferrer'
  a.hidden = true
  document.body.append(a)
  a.click()
  a.remove()
}

function framedByAnotherOrigin() {
  if (window.top === window) return false
  try {
    return window.top.location.origin !== location.origin
  } catch {
    return true // another origin's window cannot be read
  }
}

// fileDownload names the download of a file of the case.
export function fileDownload(name) {
  return `files/${name}`
}
