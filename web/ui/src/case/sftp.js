// "Temporary SFTP account": for when a browser is not an option. The
// account is the credential itself: its user name, and its token as the
// password, valid until the credential expires.
import { copyButton } from '../lib/copy.js'
import { h, $ } from '../lib/dom.js'
import { dateTime } from '../lib/format.js'

export function renderSFTP(me, token) {
  const host = me.sftp_host || location.hostname
  const port = String(me.sftp_port || 22)
  const rows = $('#sftp-account')
  const field = (label, value, ...extra) =>
    h('div', {}, h('dt', {}, label), h('dd', {}, h('code', { class: 'value' }, value), ' ', copyButton(label.toLowerCase(), () => value), ...extra))

  const secret = h('code', { class: 'value secret', id: 'sftp-password' }, '••••••••••••')
  const reveal = h('button', { type: 'button', class: 'small', 'aria-pressed': 'false', 'aria-controls': 'sftp-password' }, 'Show')
  reveal.addEventListener('click', () => {
    const shown = reveal.getAttribute('aria-pressed') !== 'true'
    reveal.setAttribute('aria-pressed', String(shown))
    reveal.textContent = shown ? 'Hide' : 'Show'
    secret.textContent = shown ? token : '••••••••••••'
    secret.classList.toggle('revealed', shown)
  })
  rows.replaceChildren(
    field('Host', host),
    field('Port', port),
    field('Username', me.username),
    h('div', {}, h('dt', {}, 'Password'), h('dd', {}, secret, ' ', reveal, ' ', copyButton('password', () => token))),
    h('div', {}, h('dt', {}, 'Expires'), h('dd', {}, h('time', { dateTime: me.expires_at }, dateTime(me.expires_at)))),
  )
  $('#sftp-expiry').textContent = dateTime(me.expires_at)
  for (const el of document.querySelectorAll('.sftp-host')) el.textContent = host
  for (const el of document.querySelectorAll('.sftp-port')) el.textContent = port
  for (const el of document.querySelectorAll('.sftp-user')) el.textContent = me.username
}
