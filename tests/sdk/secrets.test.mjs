// Secrets through the official SDK against `e2b serve`: created, listed and
// read back without values, updated, deleted; never in clear on disk.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { Secret, SecretNotFoundError } from 'e2b'

const name = `sdk-token-${process.pid}`
const value = `v-${process.pid}-do-not-print-me`
after(async () => {
  await Secret.destroy(name).catch(() => {})
})

test('Secret.create, getInfo, list: metadata, never the value', async () => {
  const s = await Secret.create(name.toUpperCase(), value, { metadata: { team: 'sdk' } })
  assert.match(s.secretId, /^sec_[a-z0-9]{20}$/)
  assert.equal(s.name, name)
  assert.equal(s.version, 1)
  assert.deepEqual(s.metadata, { team: 'sdk' })
  assert.ok(!JSON.stringify(s).includes(value))
  const byName = await Secret.getInfo(name)
  const byId = await Secret.getInfo(s.secretId)
  assert.equal(byName.secretId, s.secretId)
  assert.equal(byId.name, name)
  const p = Secret.list({ limit: 100 })
  const all = []
  while (p.hasNext) all.push(...(await p.nextItems()))
  assert.ok(all.some((x) => x.secretId === s.secretId))
  // the raw API answers too: no value anywhere
  for (const path of ['/secrets', `/secrets/${s.secretId}`]) {
    const r = await fetch(`${process.env.E2B_API_URL}${path}`, { headers: { 'X-API-Key': process.env.E2B_API_KEY } })
    const text = await r.text()
    assert.equal(r.status, 200)
    assert.ok(!text.includes(value) && !/"value"/.test(text), text)
  }
})

test('the store on disk: sealed, 0600, the key 0600', () => {
  const dir = `${process.env.E2B_DATA_DIR}/serve`
  for (const f of ['secrets.json', 'secrets.key']) assert.equal(statSync(`${dir}/${f}`).mode & 0o777, 0o600, f)
  for (const f of readdirSync(dir)) assert.ok(!readFileSync(`${dir}/${f}`).includes(value), `${f} holds the value in clear`)
})

test('Secret.update makes a new version; exists; destroy', async () => {
  const u = await Secret.update(name, `${value}-2`)
  assert.equal(u.version, 2)
  assert.equal(await Secret.exists(name), true)
  assert.equal(await Secret.destroy(name), true)
  assert.equal(await Secret.exists(name), false)
  assert.equal(await Secret.destroy(name), false)
  await assert.rejects(Secret.getInfo(name), (e) => e instanceof SecretNotFoundError)
  await assert.rejects(Secret.update(name, 'x'), (e) => e instanceof SecretNotFoundError)
})

test('bad secrets are refused', async () => {
  await assert.rejects(Secret.create('sec_reserved', 'x'))
  await Secret.create(`${name}-dup`, 'x')
  await assert.rejects(Secret.create(`${name}-dup`, 'y'), /exists/)
  await Secret.destroy(`${name}-dup`)
})
