// The official JS SDK's Template builder (npm `e2b`, pinned in package.json),
// unmodified, against `e2b serve`: run-template.sh sets E2B_API_URL,
// E2B_SANDBOX_URL, E2B_API_KEY, and TPL_BUSYBOX (an oci: layout made from the
// host's busybox), TPL_DEBIAN (Debian minbase, or empty), TPL_APT (1 when
// Debian's mirror answers).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import http from 'node:http'
import { execFileSync } from 'node:child_process'
import { Template, Sandbox, BuildError, waitForPort } from 'e2b'

const api = process.env.E2B_API_URL
const key = process.env.E2B_API_KEY
const scratch = process.env.TPL_SCRATCH
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const made = []
const run = String(process.pid)
after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
})

async function sandbox(template) {
  const s = await Sandbox.create(template, { timeoutMs: 120_000 })
  made.push(s.sandboxId)
  return s
}
const sh = async (s, cmd, opts) => (await s.commands.run(cmd, opts)).stdout

// a build context with files of known modes
const ctx = fs.mkdtempSync(path.join(scratch, 'ctx-'))
fs.writeFileSync(path.join(ctx, 'hello.txt'), 'hello from the context\n')
fs.mkdirSync(path.join(ctx, 'app/data'), { recursive: true })
fs.writeFileSync(path.join(ctx, 'app/run.sh'), '#!/bin/sh\necho app\n', { mode: 0o755 })
fs.writeFileSync(path.join(ctx, 'app/data/x.txt'), 'x\n')
fs.mkdirSync(path.join(ctx, 'www'))
fs.writeFileSync(path.join(ctx, 'www/index.html'), '<p>served by the start command</p>\n')

const name = `tpl-busybox-${run}`
let v1 // the first build of `name`

async function call(method, p, body) {
  const res = await fetch(api + p, {
    method,
    headers: { 'X-API-Key': key, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function waitStatus(templateId, buildId, until = ['ready', 'error']) {
  const entries = []
  let st
  for (let i = 0; i < 600; i++) {
    st = await Template.getBuildStatus({ templateId, buildId }, { logsOffset: entries.length })
    entries.push(...st.logEntries)
    if (until.includes(st.status)) return { ...st, all: entries }
    await sleep(200)
  }
  throw new Error(`build ${buildId} is still ${st?.status}`)
}

test('a template from a local OCI image: runCmd, copy (file and directory, modes and owners), setEnvs, setWorkdir, setUser, in the background', async () => {
  const t = Template({ fileContextPath: ctx })
    .fromImage(process.env.TPL_BUSYBOX)
    .runCmd('echo built-as-$(id -un) > /tmp/who')
    .copy('hello.txt', '/opt/hello.txt', { mode: 0o640 })
    .copy('app', '/srv/app', { user: 'root' })
    .setEnvs({ GREETING: 'hi there', EMPTY: '' })
    .runCmd(['mkdir -p /srv/work', 'chown user /srv/work'], { user: 'root' })
    .setWorkdir('/srv/work')
    .runCmd('pwd > where && echo "$GREETING" > greet')
    .setUser('guest')
    .runCmd('id -un > /tmp/guest')
  v1 = await Template.buildInBackground(t, `${name}:v1`, { cpuCount: 1, memoryMB: 512 })
  assert.match(v1.templateId, /^[a-z0-9]{20}$/)
  assert.deepEqual(v1.tags, ['v1'])
  const st = await waitStatus(v1.templateId, v1.buildId)
  assert.equal(st.status, 'ready', JSON.stringify(st.reason))
  // log entries per step, in order, each once (logsOffset)
  const msgs = st.all.map((e) => e.message)
  assert.ok(msgs.some((m) => m.startsWith('[base] FROM ')), msgs.join('\n'))
  assert.ok(msgs.some((m) => /^\[builder 1\/9\] RUN echo built-as/.test(m)), msgs.join('\n'))
  assert.ok(msgs.some((m) => /^\[builder 3\/9\] COPY app \/srv\/app root/.test(m)), msgs.join('\n'))
  assert.equal(new Set(st.all.map((e) => e.timestamp + e.message)).size, st.all.length, 'no entry twice')
  assert.ok(await Template.exists(name))
  assert.ok(!(await Template.exists(`no-such-${run}`)))
})

test('the sandbox has the steps applied', async () => {
  const s = await sandbox(`${name}:v1`)
  assert.equal(await sh(s, 'cat /tmp/who'), 'built-as-user\n')
  assert.equal(await sh(s, 'stat -c "%a %U" /opt/hello.txt; cat /opt/hello.txt', { user: 'root' }),
    '640 user\nhello from the context\n')
  await assert.rejects(s.commands.run('cat /opt/hello.txt'), (e) => /Permission denied/.test(e.stderr),
    'mode 640: not for guest')
  assert.equal(await sh(s, 'stat -c "%U %a" /srv/app/run.sh /srv/app/data/x.txt'), 'root 755\nroot 644\n')
  assert.equal(await sh(s, '/srv/app/run.sh'), 'app\n')
  assert.equal(await sh(s, 'echo "$GREETING|$EMPTY|"'), 'hi there||\n')
  assert.equal(await sh(s, 'cat /srv/work/where /srv/work/greet /tmp/guest'), '/srv/work\nhi there\nguest\n')
  // the last USER and WORKDIR are the sandbox's
  assert.equal(await sh(s, 'whoami; pwd'), 'guest\n/srv/work\n')
})

test('tags: assigned, listed, removed; a tag starts its build', async () => {
  let tags = await Template.getTags(name)
  assert.deepEqual(tags.map((t) => t.tag), ['v1'])
  assert.equal(tags[0].buildId, v1.buildId)
  assert.ok(tags[0].createdAt instanceof Date && !isNaN(tags[0].createdAt))
  const r = await Template.assignTags(`${name}:v1`, ['prod', 'stable'])
  assert.equal(r.buildId, v1.buildId)
  assert.deepEqual(r.tags, ['prod', 'stable'])
  tags = await Template.getTags(v1.templateId)
  assert.deepEqual(tags.map((t) => t.tag).sort(), ['prod', 'stable', 'v1'])
  await Template.removeTags(name, 'stable')
  tags = await Template.getTags(name)
  assert.deepEqual(tags.map((t) => t.tag).sort(), ['prod', 'v1'])
  const s = await sandbox(`${name}:prod`)
  assert.equal(await sh(s, 'cat /tmp/guest'), 'guest\n')
  await assert.rejects(Template.removeTags(name, 'nosuch'), /no tag 'nosuch'/)
  await assert.rejects(Template.assignTags(`${name}:nosuch`, 'x'), /no tag 'nosuch'/)
  await assert.rejects(Template.getTags(`no-such-${run}`), /not found/)
})

test('a failing step: status error with the step and its last output; the old build still starts', async () => {
  const t = Template({ fileContextPath: ctx })
    .fromImage(process.env.TPL_BUSYBOX)
    .runCmd('echo fine')
    .runCmd('echo the-last-words; exit 7')
  const b = await Template.buildInBackground(t, `${name}:v1`)
  assert.equal(b.templateId, v1.templateId, 'a new build of the same template')
  const st = await waitStatus(b.templateId, b.buildId)
  assert.equal(st.status, 'error')
  assert.equal(st.reason.step, '2')
  assert.match(st.reason.message, /^step 2: RUN: exit code 7/)
  assert.match(st.reason.message, /the-last-words/)
  assert.ok(st.reason.logEntries.some((e) => e.message === 'the-last-words'), JSON.stringify(st.reason))
  // Template.build throws the SDK's BuildError with the same message
  await assert.rejects(Template.build(t, name), (e) => e instanceof BuildError && /exit code 7/.test(e.message))
  const s = await sandbox(`${name}:v1`)
  assert.equal(await sh(s, 'cat /tmp/who'), 'built-as-user\n')
})

test('fromTemplate host: copy, and setStartCmd with waitForPort up in every sandbox', async () => {
  const logs = []
  const t = Template({ fileContextPath: ctx })
    .fromTemplate('host')
    .copy('www', '/srv/www')
    .runCmd('echo "$(id -un) on the host template" > /srv/www/who.txt')
    .setStartCmd('cd /srv/www && exec python3 -m http.server 8123', waitForPort(8123))
  const b = await Template.build(t, `tpl-host-${run}`, { onBuildLogs: (l) => logs.push(l.message) })
  assert.ok(logs.some((m) => m === '[base] FROM template host'), logs.join('\n'))
  const s = await sandbox(`tpl-host-${run}`)
  assert.equal(s.templateId ?? b.templateId, b.templateId)
  // the start command's server, through the router like any sandbox port
  const res = await fetch(`https://${s.getHost(8123)}/index.html`.replace(/^https:\/\/[^/]+/, process.env.E2B_SANDBOX_URL), {
    headers: { 'E2b-Sandbox-Id': s.sandboxId, 'E2b-Sandbox-Port': '8123' },
  })
  assert.equal(res.status, 200)
  assert.equal(await res.text(), '<p>served by the start command</p>\n')
  assert.equal(await sh(s, 'cat /srv/www/who.txt; whoami'), 'user on the host template\nuser\n')
  // a rebuild takes its steps from the cache, unless told to skip it
  const again = []
  await Template.build(t, `tpl-host-${run}`, { onBuildLogs: (l) => again.push(l.message) })
  assert.ok(again.some((m) => /^CACHED \[builder 2\/2\] RUN/.test(m)), again.join('\n'))
  const forced = []
  await Template.build(t, `tpl-host-${run}`, { skipCache: true, onBuildLogs: (l) => forced.push(l.message) })
  assert.ok(forced.some((m) => /^\[builder 2\/2\] RUN/.test(m)) && !forced.some((m) => m.startsWith('CACHED')),
    forced.join('\n'))
})

test('fromImage with registry credentials: pulled with them, refused without', async (tc) => {
  if (!process.env.TPL_REGISTRY) return tc.skip('no authenticated registry (docker-registry, htpasswd, skopeo)')
  const image = `${process.env.TPL_REGISTRY}/private/busybox:1`
  const t = (creds) => Template().fromImage(image, creds).runCmd('echo pulled > /tmp/pulled')
  await Template.build(t({ username: 'builder', password: 'sesame' }), `tpl-private-${run}`)
  const s = await sandbox(`tpl-private-${run}`)
  assert.equal(await sh(s, 'cat /tmp/pulled'), 'pulled\n')
  const bad = await Template.buildInBackground(t({ username: 'builder', password: 'wrong' }), `tpl-private-${run}`)
  const st = await waitStatus(bad.templateId, bad.buildId)
  assert.equal(st.status, 'error')
  assert.match(st.reason.message, /refused the credentials of user 'builder'/)
  assert.equal(st.reason.step, 'base')
})

test('the v1 flow: POST /templates with a Dockerfile, then start and status', async () => {
  const r = await call('POST', '/templates', { alias: `tpl-v1-${run}`, cpuCount: 1, memoryMB: 512,
    dockerfile: `FROM ${process.env.TPL_BUSYBOX}\nRUN echo from-v1 > /v1.txt\n` })
  assert.equal(r.status, 202, JSON.stringify(r.body))
  assert.equal(r.body.buildStatus, 'waiting')
  assert.deepEqual(r.body.aliases, [`tpl-v1-${run}`])
  const start = await call('POST', `/templates/${r.body.templateID}/builds/${r.body.buildID}`)
  assert.equal(start.status, 202, JSON.stringify(start.body))
  const st = await waitStatus(r.body.templateID, r.body.buildID)
  assert.equal(st.status, 'ready', JSON.stringify(st.reason))
  const s = await sandbox(`tpl-v1-${run}`)
  assert.equal(await sh(s, 'cat /v1.txt', { user: 'root' }), 'from-v1\n')
  const v2 = await call('POST', `/v2/templates/${r.body.templateID}/builds/${r.body.buildID}`, { fromImage: 'x' })
  assert.equal(v2.status, 400)
})

test('aptInstall where the base has apt', async (tc) => {
  if (!process.env.TPL_DEBIAN) return tc.skip('no Debian image (tests/e2e/lib-image.sh img_debian failed)')
  if (!process.env.TPL_APT) return tc.skip("Debian's mirror (deb.debian.org) does not answer: no network for apt-get")
  const t = Template().fromImage(process.env.TPL_DEBIAN).aptInstall(['hello'], { noInstallRecommends: true })
    .runCmd('hello > /tmp/hello.out')
  await Template.build(t, `tpl-debian-${run}`)
  const s = await sandbox(`tpl-debian-${run}`)
  assert.equal(await sh(s, 'cat /tmp/hello.out; command -v hello'), 'Hello, world!\n/usr/bin/hello\n')
})

// ---- bad input, by hand: E2B's status codes and clear messages ----

async function requestBuild(n) {
  const r = await call('POST', '/v3/templates', { name: n, cpuCount: 1, memoryMB: 512 })
  assert.equal(r.status, 202, JSON.stringify(r.body))
  return r.body
}

function tarOf(files) { // [[name, content]] -> a tar (python's tarfile: names as given)
  const spec = JSON.stringify(files)
  return execFileSync('python3', ['-c', `
import io, json, sys, tarfile
out = io.BytesIO()
with tarfile.open(fileobj=out, mode='w') as t:
    for name, data in json.loads(sys.argv[1]):
        b = data.encode(); i = tarfile.TarInfo(name); i.size = len(b); i.mode = 0o644
        t.addfile(i, io.BytesIO(b))
sys.stdout.buffer.write(out.getvalue())`, spec])
}

test('an unknown step type is 400 and names the step', async () => {
  const b = await requestBuild(`bad-step-${run}`)
  const r = await call('POST', `/v2/templates/${b.templateID}/builds/${b.buildID}`, {
    fromImage: process.env.TPL_BUSYBOX, steps: [{ type: 'RUN', args: ['true'] }, { type: 'FROBNICATE', args: [] }],
  })
  assert.equal(r.status, 400)
  assert.match(r.body.message, /step 2: unknown step type 'FROBNICATE'/)
  const none = await call('POST', `/v2/templates/${b.templateID}/builds/${b.buildID}`, { steps: [] })
  assert.equal(none.status, 400)
  assert.match(none.body.message, /exactly one of fromImage and fromTemplate/)
  const gone = await call('POST', `/v2/templates/${b.templateID}/builds/00000000-0000-4000-8000-000000000000`, {
    fromImage: 'x' })
  assert.equal(gone.status, 404)
})

test('files whose tar does not match the hash: 400 at the build, and the upload is dropped', async () => {
  const b = await requestBuild(`bad-hash-${run}`)
  const hash = crypto.createHash('sha256').update('not these files').digest('hex')
  const link = await call('GET', `/templates/${b.templateID}/files/${hash}`)
  assert.equal(link.status, 201)
  assert.equal(link.body.present, false)
  const up = await fetch(link.body.url, { method: 'PUT', body: tarOf([['f.txt', 'other content\n']]) })
  assert.equal(up.status, 200)
  assert.equal((await fetch(link.body.url, { method: 'PUT', body: 'x' })).status, 403, 'a URL is good for one upload')
  assert.equal((await call('GET', `/templates/${b.templateID}/files/${hash}`)).body.present, true)
  const r = await call('POST', `/v2/templates/${b.templateID}/builds/${b.buildID}`, {
    fromImage: process.env.TPL_BUSYBOX, steps: [{ type: 'COPY', args: ['f.txt', '/f.txt', '', ''], filesHash: hash }],
  })
  assert.equal(r.status, 400)
  assert.match(r.body.message, /step 1 \(COPY\): the files uploaded for f\.txt do not match its filesHash/)
  assert.equal((await call('GET', `/templates/${b.templateID}/files/${hash}`)).body.present, false, 'dropped')
  assert.equal((await call('GET', `/templates/no-such-${run}/files/${hash}`)).status, 404)
  assert.equal((await call('GET', `/templates/${b.templateID}/files/xyz`)).status, 400)
})

test("'../' in an upload's tar: 400, nothing written outside its directory", async () => {
  const b = await requestBuild(`bad-tar-${run}`)
  const hash = crypto.createHash('sha256').update('escape').digest('hex')
  const link = await call('GET', `/templates/${b.templateID}/files/${hash}`)
  const up = await fetch(link.body.url, { method: 'PUT', body: tarOf([['ok.txt', 'ok'], ['../escaped.txt', 'evil']]) })
  assert.equal(up.status, 400)
  assert.match((await up.json()).message, /escapes/)
  const files = path.join(scratch, 'data/cache/template-files')
  assert.deepEqual(fs.readdirSync(files).filter((f) => /escaped|^\.|^[0-9a-f]{64}$/.test(f) && f.includes(hash)), [])
  assert.ok(!fs.existsSync(path.join(files, 'escaped.txt')) && !fs.existsSync(path.join(scratch, 'data/cache/escaped.txt')))
  assert.equal((await call('GET', `/templates/${b.templateID}/files/${hash}`)).body.present, false)
})

test('an upload past the limit is 413, announced or streamed', async () => {
  const b = await requestBuild(`big-${run}`)
  const hash = crypto.createHash('sha256').update('big').digest('hex')
  const url = new URL((await call('GET', `/templates/${b.templateID}/files/${hash}`)).body.url)
  const put = (headers, body) => new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers },
      (res) => { let d = ''; res.on('data', (c) => { d += c }); res.on('end', () => resolve({ status: res.statusCode, body: d })) })
    req.on('error', reject)
    body(req)
  })
  // 2 GiB announced: refused before a byte of it is read
  const announced = await put({ 'Content-Length': String(2 * 1024 ** 3) }, (req) => req.write(Buffer.alloc(1024)))
  assert.equal(announced.status, 413)
  assert.match(JSON.parse(announced.body).message, /over the limit/)
  // chunked, going past the server's limit (64 MiB here): cut off at it
  const url2 = new URL((await call('GET', `/templates/${b.templateID}/files/${hash}`)).body.url)
  url.pathname = url2.pathname
  const chunk = Buffer.alloc(1024 * 1024)
  const streamed = await put({ 'Transfer-Encoding': 'chunked' }, async (req) => {
    for (let i = 0; i < 80 && !req.destroyed; i++) {
      if (!req.write(chunk)) await new Promise((r) => req.once('drain', r).once('close', r))
    }
    req.end()
  })
  assert.equal(streamed.status, 413)
  assert.equal((await call('GET', `/templates/${b.templateID}/files/${hash}`)).body.present, false)
})

test('two builds of one template at once: the newer wins (E2B), the older ends superseded, the old build serves', async () => {
  const slow = Template().fromImage(process.env.TPL_BUSYBOX).runCmd('sleep 60').skipCache()
  const a = await Template.buildInBackground(slow, `${name}:v1`)
  await waitStatus(a.templateId, a.buildId, ['building', 'ready', 'error'])
  const b = await requestBuild(`${name}:v1`)
  assert.equal(b.templateID, a.templateId)
  const start = { fromImage: process.env.TPL_BUSYBOX, steps: [{ type: 'RUN', args: ['echo second > /tmp/second'] }] }
  const r = await call('POST', `/v2/templates/${b.templateID}/builds/${b.buildID}`, start)
  assert.equal(r.status, 202, JSON.stringify(r.body))
  const again = await call('POST', `/v2/templates/${b.templateID}/builds/${b.buildID}`, start)
  assert.equal(again.status, 400)
  assert.equal(again.body.message, 'build is not in waiting state')
  const sa = await waitStatus(a.templateId, a.buildId)
  assert.equal(sa.status, 'error')
  assert.match(sa.reason.message, /superseded by a newer one/)
  const sb = await waitStatus(b.templateID, b.buildID)
  assert.equal(sb.status, 'ready', JSON.stringify(sb.reason))
  const s = await sandbox(`${name}:v1`)
  assert.equal(await sh(s, 'cat /tmp/second'), 'second\n')
  // the logs endpoint: cursor and direction
  const logs = await call('GET', `/templates/${b.templateID}/builds/${b.buildID}/logs?limit=2`)
  assert.equal(logs.status, 200)
  assert.equal(logs.body.logs.length, 2)
  const back = await call('GET', `/templates/${b.templateID}/builds/${b.buildID}/logs?direction=backward&limit=1`)
  assert.match(back.body.logs[0].message, /^Build finished/)
  const later = Date.parse(back.body.logs[0].timestamp)
  const fwd = await call('GET', `/templates/${b.templateID}/builds/${b.buildID}/logs?cursor=${later}`)
  assert.ok(fwd.body.logs.every((e) => Date.parse(e.timestamp) >= later) && fwd.body.logs.length >= 1)
  assert.equal((await call('GET', `/templates/${b.templateID}/builds/${b.buildID}/logs?direction=up`)).status, 400)
})

test('PATCH /v2/templates/{id} publishes; DELETE stops a build and removes the template', async () => {
  const p = await call('PATCH', `/v2/templates/${v1.templateId}`, { public: true })
  assert.equal(p.status, 200)
  assert.deepEqual(p.body.names, [name])
  assert.equal((await call('GET', `/templates/aliases/${name}`)).body.public, true)
  assert.equal((await call('PATCH', `/v2/templates/${v1.templateId}`, { public: 'yes' })).status, 400)
  const slow = Template().fromImage(process.env.TPL_BUSYBOX).runCmd('sleep 60').skipCache()
  const a = await Template.buildInBackground(slow, `gone-${run}`)
  await waitStatus(a.templateId, a.buildId, ['building', 'ready', 'error'])
  assert.equal((await call('DELETE', `/templates/${a.templateId}`)).status, 204)
  const st = await waitStatus(a.templateId, a.buildId)
  assert.equal(st.status, 'error')
  assert.match(st.reason.message, /its template was deleted/)
  assert.ok(!(await Template.exists(`gone-${run}`)))
})
