// The official JS SDK (npm `e2b`, pinned in package.json), unmodified,
// against `e2b serve`: run-serve.sh sets E2B_API_URL, E2B_SANDBOX_URL and
// E2B_API_KEY (a key from `e2b key create`). Sandboxes are local ones from
// the built-in `host` template (SDK_TEMPLATE names another: run-vm.sh's,
// booted as VMs); envd traffic goes through the server's router.
import { test, after } from 'node:test'
import http from 'node:http'
import assert from 'node:assert/strict'
import { Sandbox, CommandExitError, FilesystemEventType, NotFoundError, SandboxNotFoundError } from 'e2b'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const TEMPLATE = process.env.SDK_TEMPLATE || 'host'
const made = []
let sbx

after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
})

test('Sandbox.create with template, metadata, envs and timeout', async () => {
  sbx = await Sandbox.create(TEMPLATE, { metadata: { suite: 'serve', run: String(process.pid) },
    envs: { GREETING: 'hello from the SDK' }, timeoutMs: 120_000 })
  made.push(sbx.sandboxId)
  assert.match(sbx.sandboxId, /^[a-z0-9]{20}$/)
  const r = await sbx.commands.run('echo $GREETING; echo $E2B_SANDBOX')
  assert.equal(r.stdout, 'hello from the SDK\ntrue\n')
})

test('every sandbox gets an envd access token (as from E2B v2 create), and envd wants it', async () => {
  assert.match(sbx.envdAccessToken ?? '', /^[a-z0-9]{40}$/)
  const url = `${process.env.E2B_SANDBOX_URL}/envs`
  const headers = { 'E2b-Sandbox-Id': sbx.sandboxId, 'E2b-Sandbox-Port': '49983' }
  assert.equal((await fetch(url, { headers })).status, 401)
  const ok = await fetch(url, { headers: { ...headers, 'X-Access-Token': sbx.envdAccessToken } })
  assert.equal(ok.status, 200)
  assert.equal((await ok.json()).E2B_SANDBOX_ID, sbx.sandboxId)
})

test('list and getInfo', async () => {
  const info = await sbx.getInfo()
  assert.equal(info.sandboxId, sbx.sandboxId)
  assert.equal(info.templateId, process.env.SDK_TEMPLATE_ID || 'host')
  assert.deepEqual(info.metadata, { suite: 'serve', run: String(process.pid) })
  assert.equal(info.state, 'running')
  const page = Sandbox.list({ query: { metadata: { run: String(process.pid) } } })
  const items = await page.nextItems()
  assert.ok(items.some((s) => s.sandboxId === sbx.sandboxId), JSON.stringify(items))
})

test('commands: foreground, exit codes, background, connect, kill', async () => {
  await assert.rejects(sbx.commands.run('echo partial; exit 4'), (e) => e instanceof CommandExitError && e.exitCode === 4)
  const h = await sbx.commands.run('for i in 1 2 3; do echo tick$i; sleep 0.2; done', { background: true })
  const h2 = await sbx.commands.connect(h.pid)
  const r = await h2.wait()
  assert.match(r.stdout, /tick3\n$/)
  const k = await sbx.commands.run('sleep 30', { background: true })
  assert.equal(await sbx.commands.kill(k.pid), true)
  await assert.rejects(k.wait(), (e) => e instanceof CommandExitError)
})

test('files: write, read, list, watchDir', async () => {
  const dir = `/tmp/sdk-${process.pid}`
  await sbx.files.makeDir(dir)
  const events = []
  const w = await sbx.files.watchDir(dir, (e) => events.push(e))
  await sbx.files.write(`${dir}/a.txt`, 'through the router')
  assert.equal(await sbx.files.read(`${dir}/a.txt`), 'through the router')
  const big = 'x'.repeat(3 << 20)
  await sbx.files.write(`${dir}/big.txt`, big)
  assert.equal((await sbx.files.read(`${dir}/big.txt`)).length, big.length)
  const list = await sbx.files.list(dir)
  assert.deepEqual(list.map((e) => e.name).sort(), ['a.txt', 'big.txt'])
  for (let i = 0; i < 30 && !events.some((e) => e.name === 'a.txt'); i++) await sleep(100)
  await w.stop()
  assert.ok(events.some((e) => e.name === 'a.txt' && e.type === FilesystemEventType.CREATE), JSON.stringify(events))
})

test('pty', async () => {
  let out = ''
  const dec = new TextDecoder()
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => (out += dec.decode(d)), timeoutMs: 20000 })
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('echo mark-$((6*7))\n'))
  for (let i = 0; i < 50 && !out.includes('mark-42'); i++) await sleep(100)
  assert.ok(out.includes('mark-42'), out)
  await sbx.pty.resize(h.pid, { cols: 100, rows: 40 })
  assert.equal(await sbx.pty.kill(h.pid), true)
})

test('setTimeout', async () => {
  await sbx.setTimeout(60_000)
  const info = await sbx.getInfo()
  const left = new Date(info.endAt).getTime() - Date.now()
  assert.ok(left > 40_000 && left <= 61_000, `time left ${left}`)
})

// GET through the router with the Host the SDK names (<port>-<id>.<domain>
// needs no DNS: the connection goes to the server, the Host header routes).
function getVia(host, path) {
  const u = new URL(process.env.E2B_SANDBOX_URL)
  return new Promise((resolve, reject) => {
    const req = http.get({ host: u.hostname, port: u.port, path, headers: { host }, timeout: 30000 }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), json: () => JSON.parse(Buffer.concat(chunks)) }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

// Unprivileged, serve cannot enter a sandbox's network namespace (that needs
// CAP_SYS_ADMIN in its own user namespace too) nor freeze it (no delegated
// cgroup freezer): those two are root's.
const root = process.getuid() === 0
const needsRoot = root ? {} : { skip: 'needs root (unprivileged sandboxes)' }

test('getHost(port) reaches a server a command runs in the sandbox', needsRoot, async () => {
  const dir = `/tmp/www-${process.pid}`
  await sbx.files.makeDir(dir)
  const big = 'y'.repeat(5 << 20)
  await sbx.files.write(`${dir}/big.txt`, big)
  await sbx.files.write(`${dir}/hi.txt`, 'served from the sandbox\n')
  const srv = await sbx.commands.run(`cd ${dir} && exec python3 -m http.server 8765 --bind 127.0.0.1`, { background: true })
  const host = sbx.getHost(8765)
  assert.match(host, new RegExp(`^8765-${sbx.sandboxId}\\.`))
  let res
  for (let i = 0; i < 100; i++) {
    res = await getVia(host, '/hi.txt')
    if (res.status === 200) break
    await sleep(100)
  }
  assert.equal(res.status, 200)
  assert.equal(res.body.toString(), 'served from the sandbox\n')
  const b = await getVia(host, '/big.txt')
  assert.equal(b.status, 200)
  assert.equal(b.body.length, big.length)
  const closed = await getVia(sbx.getHost(8766), '/')
  assert.equal(closed.status, 502)
  assert.deepEqual(closed.json(), { message: 'The sandbox is running but port is not open', sandboxId: sbx.sandboxId, port: 8766, code: 502 })
  await srv.kill()
})

test('pause and resume', needsRoot, async () => {
  await sbx.commands.run('echo kept > /tmp/state.txt')
  assert.equal(await sbx.pause(), true)
  assert.equal((await sbx.getInfo()).state, 'paused')
  assert.equal(await Sandbox.pause(sbx.sandboxId), false, 'pausing twice is a no-op')
  const again = await Sandbox.connect(sbx.sandboxId)
  assert.equal((await again.getInfo()).state, 'running')
  assert.equal((await again.commands.run('cat /tmp/state.txt')).stdout, 'kept\n')
})

test('kill', async () => {
  await sbx.kill()
  await assert.rejects(sbx.getInfo(), (e) => e instanceof NotFoundError || e instanceof SandboxNotFoundError || /not found/i.test(String(e)))
  assert.equal(await Sandbox.kill(sbx.sandboxId), false)
})

test('templates from the store, by alias and by ID', root ? {} : { skip: 'template builds need root' }, async () => {
  const id = process.env.SDK_TINY_TEMPLATE_ID
  const a = await Sandbox.create('sdk-tiny', { timeoutMs: 60_000 })
  made.push(a.sandboxId)
  const b = await Sandbox.create(id, { timeoutMs: 60_000 })
  made.push(b.sandboxId)
  for (const s of [a, b]) {
    const info = await s.getInfo()
    assert.equal(info.templateId, id)
    assert.equal(info.name, 'sdk-tiny')
    await s.files.write('/tmp/from-sdk', s.sandboxId)
    assert.equal(await s.files.read('/tmp/from-sdk'), s.sandboxId)
    assert.deepEqual((await s.files.list('/bin')).map((e) => e.name), ['sh'])
    await s.kill()
  }
})

test('an unknown template is refused', async () => {
  await assert.rejects(Sandbox.create('no-such-template-here'), (e) => /not found/i.test(String(e)))
})
