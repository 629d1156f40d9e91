// Where `e2b serve` behaved differently from E2B's cloud for the official
// SDK and @e2b/cli (issue 15's defects), each through the SDK or the CLI as a
// user would: signed URLs used without the SDK, startedAfter, the lifecycle
// with autoResume, the default list, logs as JSON objects, template fields.
// run-serve.sh sets E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Sandbox } from 'e2b'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const run = promisify(execFile)
const cli = new URL('./node_modules/@e2b/cli/dist/index.js', import.meta.url).pathname
const made = []
const root = process.getuid() === 0
const needsRoot = root ? {} : { skip: 'needs root (pausing needs the cgroup freezer)' }

after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
})

async function create(opts = {}) {
  const s = await Sandbox.create('host', { timeoutMs: 120_000, ...opts })
  made.push(s.sandboxId)
  return s
}

// @e2b/cli against the server: its output, or its failure with its output
async function e2bCli(...args) {
  const env = { ...process.env, NO_UPDATE_NOTIFIER: '1', FORCE_COLOR: '0' }
  return run(process.execPath, [cli, ...args], { env, timeout: 60_000 })
}

test('a signed uploadUrl and downloadUrl work with plain fetch (no SDK header); forged ones are refused', async () => {
  const s = await create()
  const up = await s.uploadUrl('/tmp/signed.txt', { useSignatureExpiration: 120 })
  assert.match(up, /^http:\/\/[^/]+\/files\?.*signature=v1_/)
  const form = new FormData()
  form.append('file', new Blob(['through a signed URL']), 'signed.txt')
  const r = await fetch(up, { method: 'POST', body: form })
  assert.equal(r.status, 200, await r.clone().text())
  const down = await s.downloadUrl('/tmp/signed.txt')
  const d = await fetch(down)
  assert.equal(d.status, 200)
  assert.equal(await d.text(), 'through a signed URL')
  assert.equal(await s.files.read('/tmp/signed.txt'), 'through a signed URL')
  // forged: another signature, another path under the same signature, a signature for writing used to read
  for (const bad of [down.replace(/signature=v1_[^&]*/, 'signature=v1_Zm9yZ2Vk'),
    down.replace('signed.txt', 'other.txt'), up]) {
    const f = await fetch(bad)
    assert.equal(f.status, 401, bad)
  }
  // another sandbox's token does not open this one's files
  const other = await create()
  const theirs = await other.downloadUrl('/tmp/signed.txt')
  const t = await fetch(theirs)
  assert.notEqual(await t.text(), 'through a signed URL')
})

test('Sandbox.list({query: {startedAfter}}) includes a sandbox started exactly then', async () => {
  const s = await create()
  const t = (await s.getInfo()).startedAt
  const items = await Sandbox.list({ query: { startedAfter: t } }).nextItems()
  assert.ok(items.some((x) => x.sandboxId === s.sandboxId), JSON.stringify(items))
  const later = await Sandbox.list({ query: { startedAfter: new Date(t.getTime() + 1) } }).nextItems()
  assert.ok(!later.some((x) => x.sandboxId === s.sandboxId))
})

test('Sandbox.list() lists running and paused sandboxes, newest first', needsRoot, async () => {
  const a = await create({ metadata: { listing: String(process.pid) } })
  await sleep(20)
  const b = await create({ metadata: { listing: String(process.pid) } })
  await a.pause()
  const items = await Sandbox.list({ query: { metadata: { listing: String(process.pid) } } }).nextItems()
  assert.deepEqual(items.map((x) => [x.sandboxId, x.state]), [[b.sandboxId, 'running'], [a.sandboxId, 'paused']])
})

test('lifecycle {onTimeout: pause, autoResume: true}: taken; a paused sandbox resumes on the next request', needsRoot, async () => {
  const s = await create({ lifecycle: { onTimeout: 'pause', autoResume: true } })
  assert.deepEqual((await s.getInfo()).lifecycle, { onTimeout: 'pause', autoResume: true })
  await s.commands.run('echo kept > /tmp/kept')
  await s.pause()
  assert.equal((await s.getInfo()).state, 'paused')
  // no connect: the request itself (through the router) resumes it
  assert.equal((await s.commands.run('cat /tmp/kept')).stdout, 'kept\n')
  assert.equal((await s.getInfo()).state, 'running')
  // paused by its timeout, resumed the same way
  const t = await create({ timeoutMs: 2_000, lifecycle: { onTimeout: 'pause', autoResume: true } })
  let state
  for (let i = 0; i < 100 && state !== 'paused'; i++, await sleep(100)) state = (await t.getInfo()).state
  assert.equal(state, 'paused')
  assert.equal((await t.commands.run('echo back')).stdout, 'back\n')
  assert.equal((await t.getInfo()).state, 'running')
  // without autoResume a paused sandbox stays paused: 409 from the router
  const n = await create({ lifecycle: { onTimeout: 'pause' } })
  await n.pause()
  await assert.rejects(n.commands.run('true', { requestTimeoutMs: 10_000 }))
  assert.equal((await n.getInfo()).state, 'paused')
})

test('@e2b/cli sandbox logs reads our logs (E2B JSON objects)', async () => {
  const s = await create()
  await s.commands.run('true')
  const { stdout } = await e2bCli('sandbox', 'logs', s.sandboxId, '--format', 'json')
  const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  assert.ok(lines.some((l) => l.logger === 'supervisor' && /sandbox started/.test(l.message)), stdout)
  const pretty = await e2bCli('sandbox', 'logs', s.sandboxId)
  assert.match(pretty.stdout, /INFO/)
})

test('templates carry the fields E2B requires; @e2b/cli template list shows real dates', async () => {
  const r = await fetch(`${process.env.E2B_API_URL}/templates`, { headers: { 'X-API-Key': process.env.E2B_API_KEY } })
  const list = await r.json()
  const host = list.find((t) => t.templateID === 'host')
  for (const t of list) {
    for (const k of ['createdAt', 'updatedAt', 'buildCount', 'spawnCount', 'lastSpawnedAt', 'createdBy'])
      assert.ok(k in t, `${t.templateID} has no ${k}`)
    assert.ok(!Number.isNaN(new Date(t.createdAt).getTime()) && !Number.isNaN(new Date(t.updatedAt).getTime()))
  }
  assert.ok(host.spawnCount > 0 && !Number.isNaN(new Date(host.lastSpawnedAt).getTime()), JSON.stringify(host))
  const { stdout } = await e2bCli('template', 'list')
  assert.match(stdout, /host/)
  assert.doesNotMatch(stdout, /Invalid Date/)
})
