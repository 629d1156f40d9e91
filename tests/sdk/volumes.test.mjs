// Volumes through the official SDK against `e2b serve`, in two runs of the
// server (run-volumes.sh restarts it between): SDK_VOLUMES_PHASE=1 writes a
// volume through the volume API, mounts it into two sandboxes one after the
// other and kills both; phase 2, on a new server, finds the data there, in
// the API and in a new sandbox, and tries the attacks: another volume's
// token, '..', symlinks out of the volume, deleting a volume in use, the
// quota. The volume content API is the server itself (E2B_VOLUME_API_URL).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { Sandbox, Volume, VolumeError, VolumePathNotFoundError } from 'e2b'

const phase = process.env.SDK_VOLUMES_PHASE
const stateFile = process.env.SDK_VOLUMES_STATE
const made = []
after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
})

async function create(opts) {
  const s = await Sandbox.create('host', { timeoutMs: 120_000, ...opts })
  made.push(s.sandboxId)
  return s
}

const sh = async (s, cmd) => (await s.commands.run(cmd)).stdout

if (phase === '1') {
  test('a volume written through the volume API', async () => {
    const v = await Volume.create(`sdk-vol-${process.pid}`)
    assert.match(v.volumeId, /^[a-z0-9]{20}$/)
    assert.ok(v.token)
    const info = await Volume.getInfo(v.volumeId)
    assert.equal(info.name, v.name)
    assert.equal(info.token, v.token)
    assert.ok((await Volume.list()).some((x) => x.volumeId === v.volumeId))
    await v.makeDir('/data/nested', { force: true })
    await v.writeFile('/data/hello.txt', 'written through the volume API\n')
    const big = new Uint8Array(3 << 20).map((_, i) => i % 251)
    await v.writeFile('/data/big.bin', big.buffer)
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < 64; i++) c.enqueue(new TextEncoder().encode(`line ${i}\n`))
        c.close()
      },
    })
    await v.writeFile('/data/streamed.txt', stream)
    assert.equal((await v.readFile('/data/streamed.txt')).split('\n').length, 65)
    const back = await v.readFile('/data/big.bin', { format: 'bytes' })
    assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(big)), 0)
    assert.deepEqual((await v.list('/data')).map((e) => [e.name, e.type]).sort(),
      [['big.bin', 'file'], ['hello.txt', 'file'], ['nested', 'directory'], ['streamed.txt', 'file']])
    assert.equal((await v.list('/', { depth: 2 })).length, 5)
    const st = await v.getInfo('/data/hello.txt')
    assert.equal(st.size, 31)
    assert.equal(st.type, 'file')
    assert.ok(st.mtime instanceof Date && !Number.isNaN(st.mtime.getTime()))
    const m = await v.updateMetadata('/data/hello.txt', { mode: 0o640 })
    assert.equal(m.mode, 0o640)
    assert.equal(await v.exists('/data/nope'), false)
    await assert.rejects(v.readFile('/data/nope'), (e) => e instanceof VolumePathNotFoundError)
    writeFileSync(stateFile, JSON.stringify({ volumeId: v.volumeId, name: v.name }))
  })

  test('mounted into two sandboxes one after the other, data kept after both are killed', async () => {
    const { volumeId, name } = JSON.parse(readFileSync(stateFile))
    const v = await Volume.connect(volumeId)
    const a = await create({ volumeMounts: { '/mnt/vol': v } })
    assert.equal(await sh(a, 'cat /mnt/vol/data/hello.txt'), 'written through the volume API\n')
    await sh(a, 'echo from-sandbox-a > /mnt/vol/data/a.txt && mkdir -p /mnt/vol/from-a')
    const info = await a.getInfo()
    assert.deepEqual(info.volumeMounts, [{ name, path: '/mnt/vol' }])
    // in use: not deletable
    await assert.rejects(Volume.destroy(volumeId), (e) => e instanceof VolumeError && /in use/.test(e.message))
    await a.kill()
    const b = await create({ volumeMounts: { '/home/user/work': name } })
    assert.equal(await sh(b, 'cat /home/user/work/data/a.txt'), 'from-sandbox-a\n')
    await sh(b, 'echo from-sandbox-b >> /home/user/work/data/a.txt')
    await b.kill()
    assert.equal(await v.readFile('/data/a.txt'), 'from-sandbox-a\nfrom-sandbox-b\n')
  })
}

if (phase === '2') {
  test('after e2b serve restarts: the volume, its files, and a new sandbox on it', async () => {
    const { volumeId, name } = JSON.parse(readFileSync(stateFile))
    assert.ok((await Volume.list()).some((x) => x.volumeId === volumeId && x.name === name))
    const v = await Volume.connect(volumeId)
    assert.equal(await v.readFile('/data/a.txt'), 'from-sandbox-a\nfrom-sandbox-b\n')
    assert.equal((await v.getInfo('/data/hello.txt')).mode, 0o640)
    const c = await create({ volumeMounts: { '/mnt/v': v } })
    assert.equal(await sh(c, 'cat /mnt/v/data/hello.txt'), 'written through the volume API\n')
    await c.kill()
  })

  test('attacks: another volume\'s token, ".." and symlinks out of a volume, another sandbox', async () => {
    const { volumeId } = JSON.parse(readFileSync(stateFile))
    const v = await Volume.connect(volumeId)
    const other = await Volume.create(`sdk-other-${process.pid}`)
    await other.writeFile('/secret.txt', 'the other volume\'s file')
    // the volume API with this volume's token on the other volume: refused
    const forged = new Volume(other.volumeId, other.name, v.token)
    await assert.rejects(forged.readFile('/secret.txt'), (e) => !(e instanceof VolumePathNotFoundError) && /not this volume/.test(e.message))
    const raw = await fetch(`${process.env.E2B_VOLUME_API_URL}/volumecontent/${other.volumeId}/file?path=/secret.txt`)
    assert.equal(raw.status, 401)
    // '..' out of the volume
    for (const p of ['../volume.json', '/../volume.json', 'data/../../volume.json'])
      await assert.rejects(v.readFile(p), (e) => e instanceof VolumeError, p)
    // a symlink a sandbox left in the volume, leading out of it: refused, never followed
    const s = await create({ volumeMounts: { '/mnt/v': v } })
    await sh(s, 'ln -sf /etc/hostname /mnt/v/abs-link; ln -sf ../../../../../../etc /mnt/v/rel-link; ' +
      'ln -sfn ../.. /mnt/v/up; ln -sf data/hello.txt /mnt/v/inside-link')
    for (const p of ['/abs-link', '/rel-link/passwd', '/up/volume.json']) {
      await assert.rejects(v.readFile(p), (e) => e instanceof VolumeError, p)
      await assert.rejects(v.writeFile(p, 'x'), (e) => e instanceof VolumeError, p)
    }
    await assert.rejects(v.list('/rel-link'), (e) => e instanceof VolumeError)
    assert.equal(await v.readFile('/inside-link'), 'written through the volume API\n', 'a link within the volume is followed')
    const link = await v.getInfo('/abs-link')
    assert.equal(link.type, 'symlink')
    assert.equal(link.target, '/etc/hostname')
    // a sandbox without the volume sees nothing of it
    const t = await create({ volumeMounts: { '/mnt/other': other } })
    assert.equal(await sh(t, 'ls /mnt/v 2>&1; cat /mnt/other/secret.txt'), 'ls: cannot access \'/mnt/v\': No such file or directory\nthe other volume\'s file')
    assert.equal(await sh(s, 'ls /mnt/other 2>/dev/null; ls /mnt/v/data | sort | head -1'), 'a.txt\n')
    await s.kill()
    await t.kill()
    // a mount path out of the sandbox's own reach is refused
    await assert.rejects(create({ volumeMounts: { '/proc/x': v } }), /mount path/)
    await assert.rejects(create({ volumeMounts: { '/mnt/../etc': v } }), /mount path/)
    assert.equal(await Volume.destroy(other.volumeId), true)
  })

  test('the quota holds, for the API and for sandboxes', async () => {
    const r = await fetch(`${process.env.E2B_API_URL}/volumes`, {
      method: 'POST', headers: { 'X-API-Key': process.env.E2B_API_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: `sdk-small-${process.pid}`, quotaMB: 16 }),
    })
    assert.equal(r.status, 201)
    const { volumeID } = await r.json()
    const v = await Volume.connect(volumeID)
    await assert.rejects(v.writeFile('/big', new Uint8Array(24 << 20).buffer), (e) => e instanceof VolumeError)
    assert.equal(await v.exists('/big'), false, 'a refused write leaves nothing')
    if (process.getuid() === 0) { // unprivileged volumes are directories: only the API keeps the quota
      const s = await create({ volumeMounts: { '/q': v } })
      await assert.rejects(s.commands.run('head -c 24M /dev/zero > /q/fill'), (e) => /No space left/.test(e.result?.stderr))
      await s.kill()
    }
    assert.equal(await Volume.destroy(volumeID), true)
    assert.equal(await Volume.destroy(volumeID), false)
  })

  test('Volume.destroy once no sandbox has it', async () => {
    const { volumeId } = JSON.parse(readFileSync(stateFile))
    assert.equal(await Volume.destroy(volumeId), true)
    await assert.rejects(Volume.getInfo(volumeId), /not found/)
  })
}
