// Snapshots, creates from a snapshot and fork through the official JS SDK
// (npm `e2b`, unmodified) against `e2b serve` on one runtime (RUNTIME: vm
// or ns; run-snapshots.sh runs it once per runtime). The test starts the
// server itself (E2B_BIN, on SERVE_PORT), so that it can restart it.
//
// In the sandbox a Python process holds a counter in its memory only: it
// reads commands from the FIFO /tmp/ctl ("tick" adds one, anything else
// does not) and answers the counter's value on the FIFO /tmp/ack. So a
// value seen after a restore can only have come from the saved memory.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { Sandbox, SandboxNotFoundError } from 'e2b'

const TEMPLATE = process.env.SDK_TEMPLATE || 'host'
const RUNTIME = process.env.RUNTIME || 'vm'
const PORT = process.env.SERVE_PORT
const made = []
let server
let orig, snap

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function startServer() {
  server = spawn(process.env.E2B_BIN, ['serve', '-q', '--listen', `127.0.0.1:${PORT}`, '--deny-internet',
    '--runtime', RUNTIME], { stdio: ['ignore', 'inherit', 'inherit'] })
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${PORT}/health`)).status === 204) return
    } catch {}
    await sleep(50)
  }
  throw new Error('e2b serve did not come up')
}

async function stopServer() {
  const done = new Promise((r) => server.once('exit', r))
  server.kill('SIGTERM')
  await done
}

before(startServer)

after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
  if (server) await stopServer()
})

const COUNTER = `
import os
n = 0
while True:
    with open('/tmp/ctl') as f:
        words = f.read().split()
    n += words.count('tick')
    with open('/tmp/ack', 'w') as a:
        a.write(str(n))
`

// one command to the counter; its value after it
async function ctl(s, word) {
  const r = await s.commands.run(`echo ${word} > /tmp/ctl && cat /tmp/ack`, { timeoutMs: 30_000 })
  return Number(r.stdout)
}

async function create(id, opts = {}) {
  const s = await Sandbox.create(id, { timeoutMs: 300_000, ...opts })
  made.push(s.sandboxId)
  return s
}

test('a sandbox with a counter in a running process and files in /tmp', async () => {
  orig = await create(TEMPLATE, { metadata: { role: 'original' } })
  await orig.files.write('/tmp/counter.py', COUNTER)
  await orig.files.write('/tmp/a.txt', 'alpha')
  await orig.files.write('/tmp/b.txt', 'beta')
  await orig.commands.run('mkfifo /tmp/ctl /tmp/ack && (python3 /tmp/counter.py </dev/null >/tmp/counter.log 2>&1 &)')
  for (let i = 1; i <= 5; i++) assert.equal(await ctl(orig, 'tick'), i)
})

test('createSnapshot: the original runs on, its id and end untouched', async () => {
  const before = await orig.getInfo()
  snap = await orig.createSnapshot()
  assert.match(snap.snapshotId, /^[a-z0-9]{20}:default$/)
  assert.deepEqual(snap.names, [])
  const after = await orig.getInfo()
  assert.equal(after.sandboxId, orig.sandboxId)
  assert.equal(after.state, 'running')
  // endAt is now + the time left, so a millisecond or two apart from one read to the next
  assert.ok(Math.abs(after.endAt.getTime() - before.endAt.getTime()) < 50, `${before.endAt} -> ${after.endAt}`)
  assert.equal(await ctl(orig, 'tick'), 6, 'the original counts on')
  assert.equal(await orig.files.read('/tmp/a.txt'), 'alpha')
})

test('Sandbox.create(snapshotId) twice: each goes on from the counter, with both files, on its own', async () => {
  const [a, b] = [await create(snap.snapshotId, { envs: { WHO: 'a' } }), await create(snap.snapshotId)]
  assert.notEqual(a.sandboxId, b.sandboxId)
  for (const s of [a, b]) {
    assert.notEqual(s.sandboxId, orig.sandboxId)
    assert.equal(await ctl(s, 'show'), 5, 'the counter as the snapshot caught it')
    assert.equal(await s.files.read('/tmp/a.txt'), 'alpha')
    assert.equal(await s.files.read('/tmp/b.txt'), 'beta')
    assert.equal((await s.commands.run('echo $E2B_SANDBOX_ID')).stdout.trim(), s.sandboxId)
    assert.match(s.envdAccessToken ?? '', /^[a-z0-9]{40}$/)
    assert.notEqual(s.envdAccessToken, orig.envdAccessToken)
  }
  assert.equal((await a.commands.run('echo $WHO')).stdout, 'a\n', 'the create\'s envs')
  assert.equal(await ctl(a, 'tick'), 6)
  assert.equal(await ctl(a, 'tick'), 7)
  assert.equal(await ctl(b, 'show'), 5, 'b does not see a\'s ticks')
  await a.files.write('/tmp/a.txt', 'changed in a')
  assert.equal(await b.files.read('/tmp/a.txt'), 'alpha', 'nor its files')
  assert.equal(await orig.files.read('/tmp/a.txt'), 'alpha')
  // the original's token does not open a copy's envd
  const headers = { 'E2b-Sandbox-Id': b.sandboxId, 'E2b-Sandbox-Port': '49983' }
  const url = `${process.env.E2B_SANDBOX_URL}/envs`
  assert.equal((await fetch(url, { headers: { ...headers, 'X-Access-Token': orig.envdAccessToken } })).status, 401)
  assert.equal((await fetch(url, { headers: { ...headers, 'X-Access-Token': b.envdAccessToken } })).status, 200)
  await a.kill()
  snap.copies = [b]
})

test('listSnapshots: by sandbox and by ID', async () => {
  const all = await Sandbox.listSnapshots().nextItems()
  assert.ok(all.some((s) => s.snapshotId === snap.snapshotId), JSON.stringify(all))
  const mine = await orig.listSnapshots().nextItems()
  assert.deepEqual(mine.map((s) => s.snapshotId), [snap.snapshotId])
  const byId = await Sandbox.listSnapshots({ name: snap.snapshotId }).nextItems()
  assert.deepEqual(byId.map((s) => s.snapshotId), [snap.snapshotId])
})

test('fork({count: 3}): three independent copies of the running sandbox', async () => {
  const forks = await orig.fork({ count: 3, timeoutMs: 300_000 })
  assert.equal(forks.length, 3)
  for (const f of forks) {
    assert.ok(f instanceof Sandbox, String(f))
    made.push(f.sandboxId)
  }
  assert.equal(new Set(forks.map((f) => f.sandboxId).concat(orig.sandboxId)).size, 4)
  assert.equal(await ctl(forks[0], 'tick'), 7)
  assert.equal(await ctl(forks[0], 'tick'), 8)
  assert.equal(await ctl(forks[1], 'show'), 6)
  assert.equal(await ctl(forks[2], 'tick'), 7)
  assert.equal(await ctl(orig, 'show'), 6, 'the original is not touched by its forks')
  assert.equal((await orig.getInfo()).state, 'running')
  const listed = await Sandbox.listSnapshots({ sandboxId: orig.sandboxId }).nextItems()
  assert.deepEqual(listed.map((s) => s.snapshotId), [snap.snapshotId], 'a fork\'s snapshot is not listed')
  for (const f of forks.slice(1)) await f.kill()
  snap.copies.push(forks[0])
})

test('deleteSnapshot: the sandboxes made from it run on; it is gone', async () => {
  assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), true)
  assert.equal(await Sandbox.deleteSnapshot(snap.snapshotId), false)
  for (const s of snap.copies) {
    assert.equal((await s.getInfo()).state, 'running')
    assert.equal(await s.files.read('/tmp/b.txt'), 'beta')
    await ctl(s, 'show')
  }
  await assert.rejects(Sandbox.create(snap.snapshotId), (e) => /not found/i.test(String(e)))
  const all = await Sandbox.listSnapshots().nextItems()
  assert.ok(!all.some((s) => s.snapshotId === snap.snapshotId))
})

test('a snapshot outlives a restart of e2b serve', async () => {
  const named = await Sandbox.createSnapshot(orig.sandboxId, { name: `sdk-${RUNTIME}-snap` })
  assert.equal(named.snapshotId, `sdk-${RUNTIME}-snap:default`)
  assert.deepEqual(named.names, [`sdk-${RUNTIME}-snap`])
  await stopServer()
  await startServer()
  const after = await Sandbox.listSnapshots({ name: named.snapshotId }).nextItems()
  assert.deepEqual(after.map((s) => s.snapshotId), [named.snapshotId])
  const s = await create(named.snapshotId)
  assert.equal(await ctl(s, 'tick'), 7)
  assert.equal(await s.files.read('/tmp/a.txt'), 'alpha')
  assert.equal(await ctl(orig, 'show'), 6, 'the original ran through the restart')
  await s.kill()
  assert.equal(await Sandbox.deleteSnapshot(named.snapshotId), true)
})

test('bad input: a killed or unknown sandbox, a fork count out of range', async () => {
  await assert.rejects(Sandbox.createSnapshot('aaaaaaaaaaaaaaaaaaaa'), (e) => e instanceof SandboxNotFoundError)
  await assert.rejects(orig.fork({ count: 0 }), (e) => /at least 1/.test(String(e)))
  await assert.rejects(orig.fork({ count: 1000 }), (e) => /greater than 100/.test(String(e)))
  const id = orig.sandboxId
  await orig.kill()
  await assert.rejects(Sandbox.createSnapshot(id), (e) => e instanceof SandboxNotFoundError)
  await assert.rejects(Sandbox.fork(id), (e) => e instanceof SandboxNotFoundError)
})
