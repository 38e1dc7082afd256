// Verifies webhook deliveries with the Standard Webhooks reference library
// (npm standardwebhooks), as a case system would, and prints one JSON
// report on stdout. Run by the Go e2e tests:
//
//   node verify_webhooks.mjs < job.json
//
// job.json: {"secret": "whsec_...",
//            "deliveries": [{"body": "...", "headers": {"webhook-id": "...", ...}, "laterSeconds": 0}]}
//
// laterSeconds checks the delivery as if it arrived that much later: a
// replay of a recorded delivery. The library reads the clock with
// Date.now, so the check moves that clock instead of waiting.
import fs from 'node:fs'
import { Webhook } from 'standardwebhooks'

const job = JSON.parse(fs.readFileSync(0, 'utf8'))
const realNow = Date.now
const results = job.deliveries.map((d) => {
  Date.now = () => realNow() + (d.laterSeconds || 0) * 1000
  try {
    const payload = new Webhook(job.secret).verify(d.body, d.headers)
    return { ok: true, type: payload.type, error: null }
  } catch (err) {
    return { ok: false, type: null, error: String(err && err.message) }
  } finally {
    Date.now = realNow
  }
})
process.stdout.write(JSON.stringify({ results }))
