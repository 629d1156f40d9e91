// serve-load.mjs - CLIENTS concurrent loops of Sandbox.create / commands.run /
// kill against `e2b serve`, through the official SDK, for SECONDS (or, with
// MODE=burst, one create each, all at once). Prints creates per second,
// p50/p99 create latency and errors as JSON.
// The SDK installed for tests/sdk (ESM ignores NODE_PATH).
const { Sandbox } = await import(new URL('../sdk/node_modules/e2b/dist/index.mjs', import.meta.url))

const clients = Number(process.env.CLIENTS || 50)
const seconds = Number(process.env.SECONDS_RUN || 20)
// MODE=burst: every client creates one sandbox at the same moment (the
// "N concurrent creates" figure); once all are made, each runs a command
// in its sandbox and kills it (so no exec or kill weighs on the creates).
// MODE=floor: every client makes the SDK's cheapest API call (list) at
// the same moment: what this client costs by itself at that concurrency.
const burst = process.env.MODE === 'burst'
const floor = process.env.MODE === 'floor'
const lat = []
let errors = 0
const firstErrors = []

let until

async function loop() {
  for (let first = true; floor ? first : Date.now() < until; first = false) {
    const t0 = performance.now()
    let sbx
    if (floor) {
      await Sandbox.list().nextItems().catch(() => errors++)
      lat.push(performance.now() - t0)
      continue
    }
    try {
      sbx = await Sandbox.create('host', { timeoutMs: 60_000 })
      lat.push(performance.now() - t0)
      const r = await sbx.commands.run('echo ok')
      if (r.stdout !== 'ok\n') throw new Error(`bad output ${JSON.stringify(r.stdout)}`)
    } catch (e) {
      errors++
      if (firstErrors.length < 3) firstErrors.push(String(e).slice(0, 200))
    } finally {
      if (sbx) await sbx.kill().catch(() => errors++)
    }
  }
}

// the SDK's first request pays for loading its HTTP client (~100 ms here):
// once, untimed, so that what is measured is the creates
await Sandbox.list().nextItems()
async function burstCreates(n, timed) {
  const made = await Promise.all(Array.from({ length: n }, async () => {
    const t0 = performance.now()
    try {
      const sbx = await Sandbox.create('host', { timeoutMs: 60_000 })
      if (timed) lat.push(performance.now() - t0)
      return sbx
    } catch (e) {
      errors++
      if (firstErrors.length < 3) firstErrors.push(String(e).slice(0, 200))
    }
  }))
  await Promise.all(made.filter(Boolean).map(async (sbx) => {
    try {
      const r = await sbx.commands.run('echo ok')
      if (r.stdout !== 'ok\n') throw new Error(`bad output ${JSON.stringify(r.stdout)}`)
    } catch (e) {
      errors++
      if (firstErrors.length < 3) firstErrors.push(String(e).slice(0, 200))
    } finally {
      await sbx.kill().catch(() => errors++)
    }
  }))
}

let t0 = Date.now()
until = t0 + seconds * 1000
if (burst) {
  // the SDK's create path once, untimed (its first creates pay for loading
  // and compiling it), then time for the server to settle (a warm pool to
  // refill)
  await burstCreates(5, false)
  await new Promise((r) => setTimeout(r, 5000))
  t0 = Date.now()
  await burstCreates(clients, true)
} else await Promise.all(Array.from({ length: clients }, loop))
const secs = (Date.now() - t0) / 1000
lat.sort((a, b) => a - b)
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))].toFixed(1) : 'n/a')
console.log(JSON.stringify({ mode: process.env.MODE || 'loop', clients, seconds: secs, creates: lat.length, createsPerSec: +(lat.length / secs).toFixed(1),
  p50ms: pct(50), p99ms: pct(99), errors, firstErrors }))
