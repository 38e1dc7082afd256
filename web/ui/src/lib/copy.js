import { announce, h } from './dom.js'

// copyButton copies value() to the clipboard; label names what is copied
// for screen readers ("Copy password").
export function copyButton(label, value) {
  const button = h('button', { type: 'button', class: 'small', 'aria-label': `Copy ${label}` }, 'Copy')
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(value())
      button.textContent = 'Copied'
      announce(`${label} copied`)
    } catch {
      button.textContent = 'Copy failed'
      announce(`Could not copy the ${label}: select it and copy it by hand`)
    }
    setTimeout(() => {
      button.textContent = 'Copy'
    }, 2000)
  })
  return button
}
