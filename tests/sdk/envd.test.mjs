// The official JS SDK (npm `e2b`, pinned in package.json) against our envd.
// E2B_DEBUG=true makes Sandbox.create() skip the API and talk to
// http://localhost:49983 directly; run-envd.sh starts envd there.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import {
  Sandbox,
  CommandExitError,
  FileType,
  FilesystemEventType,
  NotFoundError,
  InvalidArgumentError,
  TimeoutError,
  getSignature,
} from 'e2b'

process.env.E2B_DEBUG = 'true'
const scratch = process.env.E2B_SDK_SCRATCH || '/tmp'
const dir = `${scratch}/sdk-${process.pid}`
let sbx

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// Poll (bounded) instead of guessing how long something takes: a loaded
// machine may need seconds where an idle one needs milliseconds.
const waitFor = async (cond, ms = 60000) => {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await cond()) return true
  return false
}

before(async () => {
  sbx = await Sandbox.create()
  await sbx.files.makeDir(dir)
})

after(async () => {
  await sbx.files.remove(dir).catch(() => {})
})

test('commands.run returns stdout, stderr and exit code 0', async () => {
  const r = await sbx.commands.run('echo hello; echo oops >&2')
  assert.equal(r.exitCode, 0)
  assert.equal(r.stdout, 'hello\n')
  assert.equal(r.stderr, 'oops\n')
})

test('commands.run reports a non-zero exit code', async () => {
  await assert.rejects(sbx.commands.run('echo partial; exit 3'), (e) => {
    assert.ok(e instanceof CommandExitError, `got ${e}`)
    assert.equal(e.exitCode, 3)
    assert.equal(e.stdout, 'partial\n')
    return true
  })
})

test('commands.run passes env vars and cwd', async () => {
  const r = await sbx.commands.run('echo "$FOO:$(pwd)"', { envs: { FOO: 'bar baz' }, cwd: dir })
  assert.equal(r.stdout, `bar baz:${dir}\n`)
  const h = await sbx.commands.run('echo $HOME $USER')
  assert.match(h.stdout, /^\/\S* \S+\n$/)
})

test('commands.run streams output to callbacks', async () => {
  const chunks = []
  await sbx.commands.run('for i in 1 2 3; do echo line$i; done', { onStdout: (d) => chunks.push(d) })
  assert.equal(chunks.join(''), 'line1\nline2\nline3\n')
})

test('commands.run with a bad cwd fails', async () => {
  await assert.rejects(sbx.commands.run('true', { cwd: `${dir}/does-not-exist` }), (e) => {
    assert.ok(e instanceof InvalidArgumentError, `got ${e}`)
    assert.match(e.message, /does-not-exist/)
    return true
  })
})

test('commands.run times out', async () => {
  const t0 = Date.now()
  await assert.rejects(sbx.commands.run('sleep 10', { timeoutMs: 700 }), (e) => {
    assert.ok(e instanceof TimeoutError, `got ${e}`)
    return true
  })
  assert.ok(Date.now() - t0 < 9000, 'timeout took too long')
  // killed at the deadline; it is gone from the list once reaped
  const gone = await waitFor(async () => !(await sbx.commands.list()).some((p) => p.args.includes('sleep 10')), 30000)
  assert.ok(gone, 'timed-out process still listed')
})

test('background command: list, connect, wait', async () => {
  // It waits (bounded) for a gate the test opens once it is connected.
  const gate = `${dir}/gate-bg`
  const h = await sbx.commands.run(
    `i=0; while [ ! -e ${gate} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; for i in 1 2 3 4; do echo tick$i; done`,
    { background: true },
  )
  assert.ok(h.pid > 0)
  const procs = await sbx.commands.list()
  assert.ok(procs.some((p) => p.pid === h.pid), 'process not listed')
  const h2 = await sbx.commands.connect(h.pid)
  await sbx.files.write(gate, 'go')
  const r = await h2.wait()
  assert.equal(r.exitCode, 0)
  assert.match(r.stdout, /tick4\n$/)
})

test('background command with stdin: sendStdin and closeStdin', async () => {
  const h = await sbx.commands.run('cat', { background: true, stdin: true })
  await sbx.commands.sendStdin(h.pid, 'hello stdin\n')
  await sbx.commands.closeStdin(h.pid)
  const r = await h.wait()
  assert.equal(r.stdout, 'hello stdin\n')
})

test('background command can be killed', async () => {
  const h = await sbx.commands.run('sleep 30', { background: true })
  assert.equal(await sbx.commands.kill(h.pid), true)
  await assert.rejects(h.wait(), (e) => {
    assert.ok(e instanceof CommandExitError, `got ${e}`)
    assert.match(e.error || '', /signal: killed/)
    return true
  })
  assert.equal(await sbx.commands.kill(h.pid), false)
})

test('files: write, read, exists, getInfo', async () => {
  const p = `${dir}/a/b/hello.txt`
  const info = await sbx.files.write(p, 'hello world')
  assert.equal(info.path, p)
  assert.equal(await sbx.files.read(p), 'hello world')
  assert.equal(await sbx.files.exists(p), true)
  assert.equal(await sbx.files.exists(`${dir}/nope`), false)
  const st = await sbx.files.getInfo(p)
  assert.equal(st.name, 'hello.txt')
  assert.equal(st.type, FileType.FILE)
  assert.equal(st.size, 11)
  assert.equal(st.permissions, '-rw-r--r--')
  assert.ok(st.modifiedTime instanceof Date)
  const bytes = await sbx.files.read(p, { format: 'bytes' })
  assert.equal(Buffer.from(bytes).toString(), 'hello world')
})

test('files: gzip upload and download, octet-stream, metadata', async () => {
  const p = `${dir}/gz.txt`
  const data = 'compress me '.repeat(1000)
  await sbx.files.write(p, data, { gzip: true })
  assert.equal(await sbx.files.read(p, { gzip: true }), data)
  await sbx.files.write(`${dir}/oct.bin`, new Blob([data]), { useOctetStream: true })
  assert.equal(await sbx.files.read(`${dir}/oct.bin`), data)
  await sbx.files.write(`${dir}/md.txt`, 'x', { metadata: { owner: 'team-a' } })
  const st = await sbx.files.getInfo(`${dir}/md.txt`)
  assert.deepEqual(st.metadata, { owner: 'team-a' })
})

test('files: write several files at once', async () => {
  const r = await sbx.files.write([
    { path: `${dir}/multi/1.txt`, data: 'one' },
    { path: `${dir}/multi/2.txt`, data: 'two' },
  ])
  assert.equal(r.length, 2)
  assert.equal(await sbx.files.read(`${dir}/multi/2.txt`), 'two')
})

test('files: list, makeDir, rename, remove', async () => {
  assert.equal(await sbx.files.makeDir(`${dir}/d1/d2`), true)
  assert.equal(await sbx.files.makeDir(`${dir}/d1/d2`), false)
  await sbx.files.write(`${dir}/d1/f.txt`, 'f')
  await sbx.files.write(`${dir}/d1/d2/inner.txt`, 'i')
  const names = (await sbx.files.list(`${dir}/d1`)).map((e) => e.name).sort()
  assert.deepEqual(names, ['d2', 'f.txt'])
  const deep = (await sbx.files.list(`${dir}/d1`, { depth: 2 })).map((e) => e.path).sort()
  assert.deepEqual(deep, [`${dir}/d1/d2`, `${dir}/d1/d2/inner.txt`, `${dir}/d1/f.txt`])
  const moved = await sbx.files.rename(`${dir}/d1/f.txt`, `${dir}/d1/g.txt`)
  assert.equal(moved.name, 'g.txt')
  assert.equal(await sbx.files.exists(`${dir}/d1/f.txt`), false)
  await sbx.files.remove(`${dir}/d1`)
  assert.equal(await sbx.files.exists(`${dir}/d1`), false)
  await assert.rejects(sbx.files.list(`${dir}/missing`), NotFoundError)
  await assert.rejects(sbx.files.read(`${dir}/missing`), NotFoundError)
})

test('files: watchDir reports create, write, rename and remove, recursively', async () => {
  await sbx.files.makeDir(`${dir}/w`)
  const events = []
  const seen = (name, type) => events.some((e) => e.name === name && e.type === type)
  const until = (cond) => waitFor(cond, 30000)
  const h = await sbx.files.watchDir(`${dir}/w`, (e) => events.push(e), { recursive: true })
  await sbx.files.write(`${dir}/w/new.txt`, 'x')
  await sbx.commands.run(`echo more >> ${dir}/w/new.txt`)
  await sbx.files.rename(`${dir}/w/new.txt`, `${dir}/w/renamed.txt`)
  await sbx.files.remove(`${dir}/w/renamed.txt`)
  await sbx.files.makeDir(`${dir}/w/sub`)
  // The new directory is watched once envd saw it created: write until a
  // file in it shows (bounded), rather than guess how long that takes.
  for (let i = 0; i < 30 && !events.some((e) => e.name.startsWith('sub/deep')); i++) {
    await sbx.files.write(`${dir}/w/sub/deep${i}.txt`, 'y')
    await until(() => events.some((e) => e.name === `sub/deep${i}.txt`))
  }
  await until(() => seen('renamed.txt', FilesystemEventType.REMOVE))
  await h.stop()
  const all = JSON.stringify(events)
  assert.ok(seen('new.txt', FilesystemEventType.CREATE), all)
  assert.ok(seen('new.txt', FilesystemEventType.WRITE), all)
  assert.ok(seen('new.txt', FilesystemEventType.RENAME), all)
  assert.ok(seen('renamed.txt', FilesystemEventType.CREATE), all)
  assert.ok(seen('renamed.txt', FilesystemEventType.REMOVE), all)
  assert.ok(seen('sub', FilesystemEventType.CREATE), all)
  assert.ok(events.some((e) => e.name.startsWith('sub/deep') && e.type === FilesystemEventType.CREATE), all)
  assert.ok(!events.some((e) => e.name.includes('e2b-upload')), `upload temp files leaked: ${all}`)
})

test('uploadUrl and downloadUrl work with plain fetch', async () => {
  const p = `${dir}/url.txt`
  const up = await sbx.uploadUrl(p)
  const fd = new FormData()
  fd.append('file', new Blob(['via url']), 'url.txt')
  const res = await fetch(up, { method: 'POST', body: fd })
  assert.equal(res.status, 200)
  const down = await sbx.downloadUrl(p)
  const got = await fetch(down)
  assert.equal(got.status, 200)
  assert.equal(await got.text(), 'via url')
})

test('pty: create, sendInput, resize, kill', async () => {
  let out = ''
  const dec = new TextDecoder()
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => (out += dec.decode(d)), timeoutMs: 120000 })
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('stty size; echo mark-$((6*7))\n'))
  await waitFor(() => out.includes('mark-42'))
  assert.match(out, /24 80/)
  assert.match(out, /mark-42/)
  await sbx.pty.resize(h.pid, { cols: 100, rows: 40 })
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('stty size\n'))
  await waitFor(() => out.includes('40 100'))
  assert.match(out, /40 100/)
  assert.equal(await sbx.pty.kill(h.pid), true)
  await assert.rejects(h.wait())
})

// A secured sandbox, as Sandbox.connect() makes one for a sandbox created
// with an access token: the SDK sends X-Access-Token and signs /files URLs
// itself (getSignature). /init sets the token, as the orchestrator does;
// the test clears it again for the rest.
test('with an access token: token on RPCs, SDK-signed uploadUrl/downloadUrl, expiry', async () => {
  const token = `tok-${process.pid}-${Date.now()}`
  const init = (body, headers = {}) =>
    fetch('http://127.0.0.1:49983/init', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
  assert.equal((await init({ accessToken: token })).status, 204)
  try {
    const secured = new Sandbox({
      sandboxId: 'debug_sandbox_id',
      envdVersion: '0.6.13',
      envdAccessToken: token,
      debug: true,
    })
    const p = `${dir}/signed.txt`
    await assert.rejects(sbx.files.write(p, 'no token'), (e) => {
      assert.match(String(e), /401|unauthenticated|access token/i)
      return true
    })
    await secured.files.write(p, 'secret data')
    assert.equal(await secured.files.read(p), 'secret data')
    const r = await secured.commands.run('echo with-token')
    assert.equal(r.stdout, 'with-token\n')

    const down = await secured.downloadUrl(p)
    assert.match(down, /[?&]signature=v1_/)
    let got = await fetch(down)
    assert.equal(got.status, 200)
    assert.equal(await got.text(), 'secret data')
    got = await fetch(await secured.downloadUrl(p, { user: 'root', useSignatureExpiration: 60 }))
    assert.equal(got.status, 200)

    const up = await secured.uploadUrl(`${dir}/up-signed.txt`)
    const fd = new FormData()
    fd.append('file', new Blob(['via signed url']), 'up-signed.txt')
    got = await fetch(up, { method: 'POST', body: fd })
    assert.equal(got.status, 200)
    assert.equal(await secured.files.read(`${dir}/up-signed.txt`), 'via signed url')

    // Refused: no signature, another path, a read signature used to write,
    // and an expired signature (made by the SDK's own getSignature).
    assert.equal((await fetch(await sbx.downloadUrl(p))).status, 401)
    const other = new URL(down)
    other.searchParams.set('path', `${dir}/up-signed.txt`)
    assert.equal((await fetch(other)).status, 401)
    assert.equal((await fetch(down, { method: 'POST', body: fd })).status, 401)
    const old = await getSignature({ path: p, operation: 'read', user: undefined, expirationInSeconds: -10, envdAccessToken: token })
    const expired = new URL(down)
    expired.searchParams.set('signature', old.signature)
    expired.searchParams.set('signature_expiration', String(old.expiration))
    got = await fetch(expired)
    assert.equal(got.status, 401)
    assert.match(await got.text(), /expired/)
  } finally {
    assert.equal((await init({ accessToken: '' }, { 'X-Access-Token': token })).status, 204)
  }
  assert.equal(await sbx.files.exists(`${dir}/signed.txt`), true)
})
