// Downloads through the API need the credential in a header, which a plain
// link cannot send: the page fetches the file and hands it to the browser
// as a download. The bytes stream into a Blob, which the browser keeps on
// disk when it is large, not in the page's memory.

export async function download(client, url, filename, onProgress = () => {}) {
  const res = await client.fetch(url)
  const total = Number(res.headers.get('Content-Length')) || 0
  let received = 0
  const counted = res.body.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        received += chunk.byteLength
        onProgress(received, total)
        controller.enqueue(chunk)
      },
    }),
  )
  const blob = await new Response(counted).blob()
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = filename
  a.hidden = true
  document.body.append(a)
  a.click()
  a.remove()
  // The browser has started saving; the Blob can go after a while.
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000)
  return received
}
