// Volumes in VM sandboxes through the official SDK against `e2b serve
// --runtime vm` (run-vm.sh, SDK_TEMPLATE its VM template): a volume
// written through the volume API is a disk of the VM; while that VM runs
// (a volume is one kernel's at a time) a second sandbox on it gets 409 and
// the volume API refuses its files; what the VM wrote without a sync is
// there after the kill, for the API and for the next VM.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, Volume, VolumeError } from 'e2b'

const TEMPLATE = process.env.SDK_TEMPLATE
const made = []
let volumeId
after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
  if (volumeId) await Volume.destroy(volumeId).catch(() => {})
})

async function create(opts) {
  const s = await Sandbox.create(TEMPLATE, { timeoutMs: 300_000, ...opts })
  made.push(s.sandboxId)
  return s
}
const sh = async (s, cmd) => (await s.commands.run(cmd)).stdout

test('a volume in a VM sandbox: its disk, one VM at a time, kept after the kill', async () => {
  const v = await Volume.create(`sdk-vm-vol-${process.pid}`)
  volumeId = v.volumeId
  await v.writeFile('/in.txt', 'through the volume API\n')
  const a = await create({ volumeMounts: { '/mnt/vol': v } })
  assert.equal(await sh(a, 'cat /mnt/vol/in.txt'), 'through the volume API\n')
  assert.match(await sh(a, 'grep " /mnt/vol " /proc/mounts'), /^\/dev\/vd[a-z] \/mnt\/vol ext4 rw/)
  await sh(a, 'echo from-vm-a > /mnt/vol/a.txt') // no sync
  // the VM has it: another sandbox is a conflict, the API's files wait
  await assert.rejects(create({ volumeMounts: { '/mnt/vol': v } }),
    (e) => /^409: /.test(e.message) && e.message.includes(`in use by sandbox ${a.sandboxId}, a VM`))
  await assert.rejects(v.readFile('/in.txt'), (e) => e instanceof VolumeError && /a VM/.test(e.message))
  await a.kill()
  assert.equal(await v.readFile('/a.txt'), 'from-vm-a\n')
  const b = await create({ volumeMounts: { '/work': v.name } })
  assert.equal(await sh(b, 'cat /work/a.txt /work/in.txt'), 'from-vm-a\nthrough the volume API\n')
  await b.kill()
  assert.equal(await Volume.destroy(v.volumeId), true)
  volumeId = undefined
})
