// The official JS SDK (npm `e2b`, pinned in package.json) against our envd.
// E2B_DEBUG=true makes Sandbox.create() skip the API and talk to
// http://localhost:49983 directly; run-envd.sh starts envd there.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, CommandExitError, FileType, FilesystemEventType, NotFoundError } from 'e2b'

process.env.E2B_DEBUG = 'true'
const scratch = process.env.E2B_SDK_SCRATCH || '/tmp'
const dir = `${scratch}/sdk-${process.pid}`
let sbx

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

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
  await assert.rejects(sbx.commands.run('true', { cwd: `${dir}/does-not-exist` }))
})

test('commands.run times out', async () => {
  const t0 = Date.now()
  await assert.rejects(sbx.commands.run('sleep 10', { timeoutMs: 700 }))
  assert.ok(Date.now() - t0 < 5000, 'timeout took too long')
  await sleep(300)
  const procs = await sbx.commands.list()
  assert.ok(!procs.some((p) => p.args.includes('sleep 10')), 'timed-out process still listed')
})

test('background command: list, connect, wait', async () => {
  const h = await sbx.commands.run('for i in 1 2 3 4; do echo tick$i; sleep 0.2; done', { background: true })
  assert.ok(h.pid > 0)
  const procs = await sbx.commands.list()
  assert.ok(procs.some((p) => p.pid === h.pid), 'process not listed')
  const h2 = await sbx.commands.connect(h.pid)
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
  const names = (await sbx.files.list(`${dir}/d1`)).map((e) => e.name).sort()
  assert.deepEqual(names, ['d2', 'f.txt'])
  const deep = (await sbx.files.list(`${dir}/d1`, { depth: 2 })).length
  assert.equal(deep, 2)
  const moved = await sbx.files.rename(`${dir}/d1/f.txt`, `${dir}/d1/g.txt`)
  assert.equal(moved.name, 'g.txt')
  assert.equal(await sbx.files.exists(`${dir}/d1/f.txt`), false)
  await sbx.files.remove(`${dir}/d1`)
  assert.equal(await sbx.files.exists(`${dir}/d1`), false)
  await assert.rejects(sbx.files.list(`${dir}/missing`), NotFoundError)
  await assert.rejects(sbx.files.read(`${dir}/missing`), NotFoundError)
})

test('files: watchDir reports creates and writes', async () => {
  await sbx.files.makeDir(`${dir}/w`)
  const events = []
  const h = await sbx.files.watchDir(`${dir}/w`, (e) => events.push(e), { recursive: true })
  await sbx.files.write(`${dir}/w/new.txt`, 'x')
  await sbx.files.makeDir(`${dir}/w/sub`)
  await sleep(200)
  await sbx.files.write(`${dir}/w/sub/deep.txt`, 'y')
  for (let i = 0; i < 30 && !events.some((e) => e.name === 'sub/deep.txt'); i++) await sleep(100)
  await h.stop()
  assert.ok(events.some((e) => e.name === 'new.txt' && e.type === FilesystemEventType.CREATE), JSON.stringify(events))
  assert.ok(events.some((e) => e.name === 'sub/deep.txt'), JSON.stringify(events))
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
  const h = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => (out += dec.decode(d)), timeoutMs: 20000 })
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('stty size; echo mark-$((6*7))\n'))
  for (let i = 0; i < 50 && !out.includes('mark-42'); i++) await sleep(100)
  assert.match(out, /24 80/)
  assert.match(out, /mark-42/)
  await sbx.pty.resize(h.pid, { cols: 100, rows: 40 })
  await sbx.pty.sendInput(h.pid, new TextEncoder().encode('stty size\n'))
  for (let i = 0; i < 50 && !out.includes('40 100'); i++) await sleep(100)
  assert.match(out, /40 100/)
  assert.equal(await sbx.pty.kill(h.pid), true)
  await assert.rejects(h.wait())
})
