// How numbers, durations and dates read on the pages.

const units = ['bytes', 'kB', 'MB', 'GB', 'TB']

// bytes: 1234567 → "1.2 MB" (powers of 1000, as file managers show).
export function bytes(n) {
  if (!Number.isFinite(n)) return '?'
  let i = 0
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000
    i++
  }
  if (i === 0) return `${n} ${n === 1 ? 'byte' : 'bytes'}`
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`
}

export function speed(bytesPerSecond) {
  return `${bytes(Math.round(bytesPerSecond))}/s`
}

// duration: seconds → "45 s", "12 min", "3 h 20 min".
export function duration(seconds) {
  if (!Number.isFinite(seconds)) return ''
  const s = Math.max(1, Math.round(seconds))
  if (s < 60) return `${s} s`
  const min = Math.round(s / 60)
  if (min < 60) return `${min} min`
  const hours = Math.floor(min / 60)
  return min % 60 ? `${hours} h ${min % 60} min` : `${hours} h`
}

export function percent(part, whole) {
  if (!whole) return '100 %'
  return `${Math.floor((part / whole) * 100)} %`
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  timeZoneName: 'short',
})
const dayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'long' })

export function dateTime(iso) {
  return iso ? dateFormat.format(new Date(iso)) : ''
}

export function day(iso) {
  return iso ? dayFormat.format(new Date(iso)) : ''
}

// timeEl is a <time> element showing iso as a date and time.
export function timeEl(iso, format = dateTime) {
  const t = document.createElement('time')
  t.dateTime = iso
  t.textContent = format(iso)
  return t
}

// Rate measures a transfer's speed over the last few seconds.
export class Rate {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs
    this.samples = []
  }

  reset() {
    this.samples = []
  }

  // add records that total bytes were done at time now (ms).
  add(total, now = performance.now()) {
    this.samples.push([now, total])
    while (this.samples.length > 2 && now - this.samples[1][0] > this.windowMs) this.samples.shift()
  }

  // perSecond is the bytes per second over the window; 0 until known.
  perSecond(now = performance.now()) {
    if (this.samples.length < 2) return 0
    const [t0, b0] = this.samples[0]
    const [t1, b1] = this.samples[this.samples.length - 1]
    // A transfer that stopped reporting has slowed down: count the wait.
    const elapsed = Math.max(t1, now - 1000) - t0
    return elapsed > 0 ? ((b1 - b0) * 1000) / elapsed : 0
  }
}
