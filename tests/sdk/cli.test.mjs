// Two command lines against `e2b serve` (run-template.sh starts it): ours
// in remote mode (E2B_BIN, configured like the SDK: E2B_API_URL, E2B_API_KEY)
// and E2B's own, @e2b/cli pinned in package.json, configured the way its
// users point it at a self-hosted E2B (the same variables; the SDK inside it
// reads E2B_API_URL and E2B_SANDBOX_URL).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const scratch = process.env.TPL_SCRATCH
const run = String(process.pid)
const e2bCli = path.join(here, 'node_modules/@e2b/cli/dist/index.js')
const killLater = []

function ours(args, opts = {}) {
  const r = spawnSync(process.env.E2B_BIN, args, { encoding: 'utf8', timeout: 300_000, ...opts })
  return { code: r.status, out: r.stdout, err: r.stderr }
}
function theirs(args, opts = {}) {
  const r = spawnSync(process.execPath, [e2bCli, ...args], { encoding: 'utf8', timeout: 300_000, ...opts })
  return { code: r.status, out: r.stdout, err: r.stderr }
}
after(() => {
  for (const id of killLater) ours(['sandbox', 'kill', '-q', id])
})

function context(dockerfile) {
  const dir = fs.mkdtempSync(path.join(scratch, 'cli-'))
  fs.writeFileSync(path.join(dir, 'e2b.Dockerfile'), dockerfile)
  fs.mkdirSync(path.join(dir, 'site'))
  fs.writeFileSync(path.join(dir, 'site/index.html'), '<p>hi</p>\n')
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'copied by the CLI\n')
  fs.writeFileSync(path.join(dir, '.dockerignore'), 'secret.txt\n')
  fs.writeFileSync(path.join(dir, 'secret.txt'), 'must not leave\n')
  return dir
}

test('our CLI: template build through the API (Dockerfile steps, context files), then list, tags, delete', () => {
  const name = `cli-remote-${run}`
  const dir = context(`FROM ${process.env.TPL_BUSYBOX}
ARG FLAVOUR=plain
ENV FLAVOUR=$FLAVOUR
COPY notes.txt /opt/notes.txt
COPY site /srv/site
RUN echo "built $FLAVOUR as $(id -un)" > /opt/built && ls /srv/site
EXPOSE 80
`)
  fs.writeFileSync(path.join(dir, 'e2b.toml'), `template_name = "${name}"\ndockerfile = "e2b.Dockerfile"\n`)
  const b = ours(['template', 'build', '-p', dir, '-t', 'v1', '--build-arg', 'FLAVOUR=spicy'])
  assert.equal(b.code, 0, b.err)
  const id = b.out.trim()
  assert.match(id, /^[a-z0-9]{20}$/)
  assert.match(b.err, /\[builder \d+\/\d+\] COPY site \/srv\/site/)
  assert.match(b.err, /EXPOSE \(line 7\) is not sent to the API/)
  assert.match(fs.readFileSync(path.join(dir, 'e2b.toml'), 'utf8'), new RegExp(`template_id = "${id}"`))
  // the request as sent: a dry run prints it
  const dry = ours(['template', 'build', '-p', dir, '--dry-run'])
  assert.equal(dry.code, 0, dry.err)
  const req = JSON.parse(dry.out)
  assert.equal(req.fromImage, process.env.TPL_BUSYBOX)
  assert.deepEqual(req.steps.map((s) => s.type), ['USER', 'WORKDIR', 'ENV', 'ENV', 'COPY', 'COPY', 'RUN', 'USER', 'WORKDIR'])
  // list, tags
  const list = JSON.parse(ours(['template', 'list', '--json']).out)
  assert.ok(list.some((t) => t.templateID === id), JSON.stringify(list))
  assert.equal(ours(['template', 'tags', 'add', '-q', `${name}:v1`, 'prod']).code, 0)
  const tags = JSON.parse(ours(['template', 'tags', 'list', name, '--json']).out)
  assert.deepEqual(tags.map((t) => t.tag).sort(), ['prod', 'v1'])
  assert.equal(ours(['template', 'tags', 'remove', '-q', name, 'prod']).code, 0)
  const rm = ours(['template', 'tags', 'remove', name, 'nosuch'])
  assert.equal(rm.code, 1)
  assert.match(rm.err, /no tag 'nosuch'/)
  // a sandbox from it has the files and the step's result; .dockerignore kept secret.txt home
  const s = ours(['sandbox', 'create', '-d', '-q', `${name}:v1`], { input: '' })
  assert.equal(s.code, 0, s.err)
  const sid = s.out.trim()
  killLater.push(sid)
  const x = ours(['sandbox', 'exec', sid, '--', 'sh', '-c', 'cat /opt/notes.txt /opt/built /srv/site/index.html'])
  // RUN as root: E2B's CLI starts a Dockerfile's steps with USER root, as Docker does
  assert.equal(x.out, 'copied by the CLI\nbuilt spicy as root\n<p>hi</p>\n', x.err)
  assert.equal(ours(['sandbox', 'exec', sid, '--', 'sh', '-c', 'whoami; pwd; test -e /srv/site/secret.txt || echo kept']).out,
    'user\n/home/user\nkept\n')
  // a failing step: exit 1, the step and its output; the template stays
  fs.appendFileSync(path.join(dir, 'e2b.Dockerfile'), 'RUN echo going-down && false\n')
  const bad = ours(['template', 'build', '-p', dir, '-q'])
  assert.equal(bad.code, 1)
  assert.match(bad.err, / failed: step 8: RUN: exit code 1; last output:\ngoing-down/)
  const del = ours(['template', 'delete', '-y', name])
  assert.equal(del.code, 0, del.err)
  assert.ok(!JSON.parse(ours(['template', 'list', '--json']).out).some((t) => t.templateID === id))
})

test("E2B's CLI (@e2b/cli): auth info, template create/list/delete, sandbox create/list/connect/kill", () => {
  const name = `e2b-cli-${run}`
  const v = theirs(['--version'])
  assert.equal(v.out.trim(), '2.19.0')
  // configured by environment (E2B_API_KEY): no login stored
  assert.match(theirs(['auth', 'info']).out, /Not logged in/)
  // `template build` is E2B's deprecated v1 command; `template create` is its build
  const dir = context(`FROM ${process.env.TPL_BUSYBOX}
COPY notes.txt /opt/notes.txt
RUN echo made-by-e2b-cli > /opt/made
`)
  const c = theirs(['template', 'create', name, '-p', dir, '--cpu-count', '1', '--memory-mb', '512',
    '-c', 'sleep 3600', '--ready-cmd', 'true'])
  assert.equal(c.code, 0, c.out + c.err)
  assert.match(c.out, /Building sandbox template .* finished/)
  const list = JSON.parse(theirs(['template', 'list', '-f', 'json']).out)
  const t = list.find((x) => x.names?.includes(name) || x.aliases?.includes(name))
  assert.ok(t, JSON.stringify(list))
  // sandboxes
  const cr = theirs(['sandbox', 'create', name, '--detach'])
  assert.equal(cr.code, 0, cr.err)
  const sid = cr.out.trim().split('\n').pop()
  assert.match(sid, /^[a-z0-9]{20}$/, cr.out)
  killLater.push(sid)
  const sl = JSON.parse(theirs(['sandbox', 'list', '-f', 'json']).out)
  assert.ok(sl.some((x) => x.sandboxId === sid && x.templateId === t.templateID), JSON.stringify(sl))
  // connect: a terminal (script(1) gives it one), a command typed into it
  const typed = `sleep 2; printf 'cat /opt/notes.txt /opt/made; echo "$(whoami) end"\\n'; sleep 2; printf 'exit\\n'; sleep 1`
  const con = spawnSync('sh', ['-c', `(${typed}) | script -qec '${process.execPath} ${e2bCli} sandbox connect ${sid}' /dev/null`],
    { encoding: 'utf8', timeout: 60_000 })
  assert.match(con.stdout, /copied by the CLI\s+made-by-e2b-cli\s+user end/, con.stdout + con.stderr)
  const k = theirs(['sandbox', 'kill', sid])
  assert.equal(k.code, 0, k.err)
  assert.match(k.out, /has been killed/)
  assert.ok(!JSON.parse(theirs(['sandbox', 'list', '-f', 'json']).out).some((x) => x.sandboxId === sid))
  const d = theirs(['template', 'delete', name, '-y'])
  assert.equal(d.code, 0, d.out + d.err)
  assert.ok(!JSON.parse(theirs(['template', 'list', '-f', 'json']).out).some((x) => x.templateID === t.templateID))
})

test("E2B's CLI: auth login against e2b serve (E2B_DOCS_BASE), then commands with the stored key, logout", async () => {
  const api = process.env.E2B_API_URL
  const home = fs.mkdtempSync(path.join(scratch, 'home-'))
  // the "browser": xdg-open leaves the URL where the test finds it
  fs.mkdirSync(path.join(home, 'bin'))
  fs.writeFileSync(path.join(home, 'bin/xdg-open'), '#!/bin/sh\necho "$1" > "$HOME/url"\n', { mode: 0o755 })
  const env = { ...process.env, HOME: home, E2B_DOCS_BASE: `${api}/docs`, PATH: `${home}/bin:${process.env.PATH}` }
  delete env.E2B_API_KEY // the login gives the key
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [e2bCli, 'auth', 'login'], { env })
  after(() => child.kill()) // gone already unless the test failed
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  let url
  for (let i = 0; i < 100 && !url; i++) {
    await new Promise((r) => setTimeout(r, 100))
    if (fs.existsSync(path.join(home, 'url'))) url = fs.readFileSync(path.join(home, 'url'), 'utf8').trim()
  }
  assert.ok(url?.startsWith(`${api}/docs/api/cli?next=`), `${url} / ${out}`)
  const next = new URL(url).searchParams.get('next')
  const page = await fetch(url)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /<form method="post" action="\/docs\/api\/cli">/)
  const post = (key, n = next) => fetch(`${api}/docs/api/cli`, { method: 'POST', redirect: 'manual',
    body: new URLSearchParams({ next: n, key }) })
  assert.equal((await post('e2b_0123456789abcdef0123456789abcdef')).status, 401, 'not a key of the server')
  assert.equal((await post(process.env.E2B_API_KEY, 'https://evil.example/')).status, 400, 'tokens go nowhere else')
  const ok = await post(process.env.E2B_API_KEY)
  assert.equal(ok.status, 302)
  const loc = ok.headers.get('location')
  assert.ok(loc.startsWith(next), loc)
  const back = await fetch(loc, { redirect: 'manual' }) // the CLI's own listener
  assert.equal(back.status, 302)
  assert.equal((await fetch(back.headers.get('location'))).status, 200, 'the success page')
  assert.equal(await exited, 0, out)
  assert.match(out, /Logged in as local@e2b-serve with selected project e2b serve/)
  const cfg = JSON.parse(fs.readFileSync(path.join(home, '.e2b/config.json'), 'utf8'))
  assert.equal(cfg.projectApiKey, process.env.E2B_API_KEY)
  const opts = { env: { ...env, PATH: process.env.PATH } }
  assert.match(theirs(['auth', 'info'], opts).out, /local@e2b-serve/)
  const list = theirs(['template', 'list', '-f', 'json'], opts)
  assert.equal(list.code, 0, list.err)
  assert.ok(Array.isArray(JSON.parse(list.out)))
  assert.match(theirs(['auth', 'logout'], opts).out, /Logged out/)
  assert.ok(!fs.existsSync(path.join(home, '.e2b/config.json')))
  const teams = await fetch(`${api}/teams`, { headers: { Authorization: `Bearer ${cfg.tokens.access_token}` } })
  assert.equal(teams.status, 401, 'the revoked token stands for nothing')
})
