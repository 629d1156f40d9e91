// The official JS SDK (npm `e2b`, unmodified) against a cluster of three
// `e2b serve --cluster` nodes, each in a network namespace of its own
// (tests/e2e/t6200-serve-cluster.sh makes them and runs this file in the
// namespace of the catalog). E2B_API_URL and E2B_SANDBOX_URL name node 1:
// everything goes through it; CLUSTER_NODES lists all three (URL=nodeID
// pairs), CLUSTER_TEMPLATE the template (built on node 1 only).
// CLUSTER_OUT: where the sandboxes it leaves running are written, by node.
import { test, after } from 'node:test'
import http from 'node:http'
import fs from 'node:fs'
import assert from 'node:assert/strict'
import { Sandbox, CommandExitError, FilesystemEventType, NotFoundError } from 'e2b'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const TEMPLATE = process.env.CLUSTER_TEMPLATE
const NODES = process.env.CLUSTER_NODES.split(',').map((p) => { const [url, id] = p.split('='); return { url, id } })
const KEY = process.env.E2B_API_KEY
const RUN = String(process.pid)
const sandboxes = [] // {sbx, node}

async function api(url, path, init = {}) {
  const r = await fetch(url + path, { ...init, headers: { 'X-API-Key': KEY, 'Content-Type': 'application/json', ...(init.headers ?? {}) } })
  const text = await r.text()
  return { status: r.status, body: text ? JSON.parse(text) : null }
}

// clientID: the node that runs it (E2B's orchestrator node)
const nodeOf = async (id) => (await api(NODES[0].url, `/sandboxes/${id}`)).body.clientID

after(() => {
  const left = {}
  for (const { sbx, node } of sandboxes) (left[node] ??= []).push(sbx.sandboxId)
  fs.writeFileSync(process.env.CLUSTER_OUT, JSON.stringify(left))
})

test('30 creates through one node spread over all three, from a template built on one', async () => {
  const made = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    Sandbox.create(TEMPLATE, { metadata: { suite: 'cluster', run: RUN, n: String(i) }, envs: { N: String(i) }, timeoutMs: 600_000 })))
  for (const sbx of made) sandboxes.push({ sbx, node: await nodeOf(sbx.sandboxId) })
  const per = {}
  for (const { node } of sandboxes) per[node] = (per[node] ?? 0) + 1
  for (const n of NODES) assert.ok((per[n.id] ?? 0) >= 5, `by node: ${JSON.stringify(per)}`)
  console.log(`# placed by node: ${JSON.stringify(per)}`)
  const r = await made[29].commands.run('echo $N; cat /etc/hostname >/dev/null; busybox | head -n 1')
  assert.match(r.stdout, /^29\nBusyBox/)
})

const away = () => sandboxes.find((s) => s.node !== NODES[0].id)

test('commands through a node that does not run the sandbox', async () => {
  const { sbx } = away()
  const r = await sbx.commands.run('echo $E2B_SANDBOX_ID')
  assert.equal(r.stdout, `${sbx.sandboxId}\n`)
  await assert.rejects(sbx.commands.run('echo partial; exit 4'), (e) => e instanceof CommandExitError && e.exitCode === 4)
  const h = await sbx.commands.run('for i in 1 2 3; do echo tick$i; sleep 0.2; done', { background: true })
  const h2 = await sbx.commands.connect(h.pid)
  assert.match((await h2.wait()).stdout, /tick3\n$/)
  const long = await sbx.commands.run('sleep 30', { background: true })
  assert.equal(await sbx.commands.kill(long.pid), true)
})

test('files and watchDir through a node that does not run the sandbox', async () => {
  const { sbx } = away()
  const dir = `/tmp/cl-${RUN}`
  await sbx.files.makeDir(dir)
  const events = []
  const w = await sbx.files.watchDir(dir, (e) => events.push(e))
  await sbx.files.write(`${dir}/a.txt`, 'through another node')
  assert.equal(await sbx.files.read(`${dir}/a.txt`), 'through another node')
  const big = 'z'.repeat(3 << 20)
  await sbx.files.write(`${dir}/big.txt`, big)
  assert.equal((await sbx.files.read(`${dir}/big.txt`)).length, big.length)
  assert.deepEqual((await sbx.files.list(dir)).map((e) => e.name).sort(), ['a.txt', 'big.txt'])
  for (let i = 0; i < 50 && !events.some((e) => e.name === 'a.txt'); i++) await sleep(100)
  await w.stop()
  assert.ok(events.some((e) => e.name === 'a.txt' && e.type === FilesystemEventType.CREATE), JSON.stringify(events))
})

test('pty through a node that does not run the sandbox', async () => {
  const { sbx } = away()
  let out = ''
  const dec = new TextDecoder()
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => (out += dec.decode(d)), timeoutMs: 20000 })
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('echo mark-$((6*7))\n'))
  for (let i = 0; i < 50 && !out.includes('mark-42'); i++) await sleep(100)
  assert.ok(out.includes('mark-42'), out)
  await sbx.pty.resize(h.pid, { cols: 100, rows: 40 })
  assert.equal(await sbx.pty.kill(h.pid), true)
})

function getVia(host, path) { // the Host routes; the connection goes to node 1
  const u = new URL(process.env.E2B_SANDBOX_URL)
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path, headers: { host }, timeout: 30000 }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

test('a port of the sandbox (<port>-<id>.<domain>) through a node that does not run it', async () => {
  const { sbx } = away()
  const dir = `/tmp/www-${RUN}`
  await sbx.files.write(`${dir}/hi.txt`, 'served from another node\n')
  await sbx.files.write(`${dir}/big.txt`, 'w'.repeat(2 << 20))
  const srv = await sbx.commands.run(`exec busybox httpd -f -p 127.0.0.1:8765 -h ${dir}`, { background: true })
  let res
  for (let i = 0; i < 100; i++) {
    res = await getVia(sbx.getHost(8765), '/hi.txt')
    if (res.status === 200) break
    await sleep(100)
  }
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'served from another node\n')
  assert.equal((await getVia(sbx.getHost(8765), '/big.txt')).body.length, 2 << 20)
  await srv.kill()
})

test('list from each node shows all 30; info and timeouts from any node', async () => {
  for (const n of NODES) {
    const items = []
    const page = Sandbox.list({ apiUrl: n.url, query: { metadata: { run: RUN } }, limit: 100 })
    while (page.hasNext) items.push(...(await page.nextItems()))
    assert.equal(items.length, 30, `from ${n.id}: ${items.length}`)
    assert.deepEqual(new Set(items.map((s) => s.sandboxId)), new Set(sandboxes.map((s) => s.sbx.sandboxId)))
  }
  const { sbx } = away()
  const info = await Sandbox.getInfo(sbx.sandboxId, { apiUrl: NODES[2].url })
  assert.equal(info.sandboxId, sbx.sandboxId)
  assert.equal(info.metadata.run, RUN)
  await Sandbox.setTimeout(sbx.sandboxId, 500_000, { apiUrl: NODES[1].url })
  const left = new Date((await sbx.getInfo()).endAt).getTime() - Date.now()
  assert.ok(left > 480_000 && left <= 501_000, `time left ${left}`)
})

test('pause from one node, resume from another, neither running the sandbox', async () => {
  const { sbx } = sandboxes.find((s) => s.node === NODES[1].id)
  await sbx.commands.run('echo kept > /tmp/state.txt')
  assert.equal(await Sandbox.pause(sbx.sandboxId, { apiUrl: NODES[2].url }), true)
  assert.equal((await sbx.getInfo()).state, 'paused')
  assert.equal(await Sandbox.pause(sbx.sandboxId, { apiUrl: NODES[0].url }), false, 'pausing twice is a no-op')
  const again = await Sandbox.connect(sbx.sandboxId) // through node 1
  assert.equal((await again.getInfo()).state, 'running')
  assert.equal((await again.commands.run('cat /tmp/state.txt')).stdout, 'kept\n')
})

test('kill from a node that does not run the sandbox', async () => {
  const i = sandboxes.findIndex((s) => s.node === NODES[1].id)
  const { sbx } = sandboxes[i]
  assert.equal(await Sandbox.kill(sbx.sandboxId, { apiUrl: NODES[2].url }), true)
  sandboxes.splice(i, 1)
  await assert.rejects(Sandbox.getInfo(sbx.sandboxId), (e) => e instanceof NotFoundError || /not found/i.test(e.message))
  assert.equal(await Sandbox.kill(sbx.sandboxId, { apiUrl: NODES[0].url }), false)
})
