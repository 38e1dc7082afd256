// "Temporary SFTP account": for when a browser is not an option. The
// account is the credential itself: its user name, and its short SFTP
// password (from the link), valid until the credential expires. A link
// without the password still opens the account: the token works as the
// password too, in every client whose password box takes it.
import { copyButton } from '../lib/copy.js'
import { h, $ } from '../lib/dom.js'
import { dateTime } from '../lib/format.js'

const hidden = '••••••••••••'

export function renderSFTP(me, token, password) {
  const host = me.sftp_host || location.hostname
  const port = String(me.sftp_port || 22)
  const secret = password || token
  const rows = $('#sftp-account')
  const field = (label, value, ...extra) =>
    h('div', {}, h('dt', {}, label), h('dd', {}, h('code', { class: 'value' }, value), ' ', copyButton(label.toLowerCase(), () => value), ...extra))

  const shown = h('code', { class: 'value secret', id: 'sftp-password' }, hidden)
  const reveal = h('button', { type: 'button', class: 'small', 'aria-pressed': 'false', 'aria-controls': 'sftp-password' }, 'Show')
  reveal.addEventListener('click', () => {
    const on = reveal.getAttribute('aria-pressed') !== 'true'
    reveal.setAttribute('aria-pressed', String(on))
    reveal.textContent = on ? 'Hide' : 'Show'
    shown.textContent = on ? secret : hidden
    shown.classList.toggle('revealed', on)
  })
  rows.replaceChildren(
    field('Host', host),
    field('Port', port),
    field('Username', me.username),
    h('div', {}, h('dt', {}, 'Password'), h('dd', {}, shown, ' ', reveal, ' ', copyButton('password', () => secret))),
    h('div', {}, h('dt', {}, 'Expires'), h('dd', {}, h('time', { dateTime: me.expires_at }, dateTime(me.expires_at)))),
  )
  $('#sftp-token-note').hidden = Boolean(password)
  $('#sftp-expiry').textContent = dateTime(me.expires_at)
  for (const el of document.querySelectorAll('.sftp-host')) el.textContent = host
  for (const el of document.querySelectorAll('.sftp-port')) el.textContent = port
  for (const el of document.querySelectorAll('.sftp-user')) el.textContent = me.username
}
