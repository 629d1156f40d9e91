// serve-load.mjs - CLIENTS concurrent loops of Sandbox.create / commands.run /
// kill against `e2b serve`, through the official SDK, for SECONDS. Prints
// creates per second, p50/p99 create latency and errors as JSON.
// The SDK installed for tests/sdk (ESM ignores NODE_PATH).
const { Sandbox } = await import(new URL('../sdk/node_modules/e2b/dist/index.mjs', import.meta.url))

const clients = Number(process.env.CLIENTS || 50)
const seconds = Number(process.env.SECONDS_RUN || 20)
const until = Date.now() + seconds * 1000
const lat = []
let errors = 0
const firstErrors = []

async function loop() {
  while (Date.now() < until) {
    const t0 = performance.now()
    let sbx
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

const t0 = Date.now()
await Promise.all(Array.from({ length: clients }, loop))
const secs = (Date.now() - t0) / 1000
lat.sort((a, b) => a - b)
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))].toFixed(1) : 'n/a')
console.log(JSON.stringify({ clients, seconds: secs, creates: lat.length, createsPerSec: +(lat.length / secs).toFixed(1),
  p50ms: pct(50), p99ms: pct(99), errors, firstErrors }))
