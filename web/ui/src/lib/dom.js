// Small DOM helpers. Text always goes in as text (never as HTML): file
// names and user names come from uploaders.

// h creates an element: h('button', { class: 'x', onclick: f }, 'Label').
// Keys starting with "on" add listeners; aria-*, data-* and unknown keys
// become attributes; the rest are set as properties.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else if (key === 'class') el.className = value
    else if (key.startsWith('aria-') || key.startsWith('data-') || !(key in el)) el.setAttribute(key, value)
    else el[key] = value
  }
  el.append(...children.flat().filter((c) => c != null && c !== false))
  return el
}

export const $ = (selector, root = document) => root.querySelector(selector)

// announce tells screen readers about a change (the page's polite live
// region), without moving the focus.
export function announce(text) {
  const live = $('#live')
  live.textContent = ''
  // A new text node in the next frame is read even if it repeats the last.
  requestAnimationFrame(() => {
    live.textContent = text
  })
}

// frameThrottle returns f wrapped to run at most once per animation frame.
export function frameThrottle(f) {
  let pending = false
  return () => {
    if (pending) return
    pending = true
    requestAnimationFrame(() => {
      pending = false
      f()
    })
  }
}
