// The official code-interpreter SDK (npm `@e2b/code-interpreter`, pinned in
// package.json), unmodified, against `e2b serve` and sandboxes of
// templates/code-interpreter built as code-interpreter-v1, the SDK's default
// template: run-code-interpreter.sh sets E2B_API_URL, E2B_SANDBOX_URL and
// E2B_API_KEY. Code runs in the sandbox's code-interpreter server (port
// 49999, reached through serve's router) on real Jupyter kernels.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, NotFoundError } from '@e2b/code-interpreter'

const made = []
let sbx
// runCode arms a requestTimeoutMs timer (60 s) that it clears only when the
// answer is a 2xx: calls that are meant to fail pass 0, so no timer keeps
// node alive for a minute after the tests.
const failing = { requestTimeoutMs: 0 }

after(async () => {
  for (const s of made) await s.kill().catch(() => {})
})

const jupyter = () => process.env.E2B_SANDBOX_URL
const headers = (extra = {}) => ({ 'Content-Type': 'application/json', 'E2b-Sandbox-Id': sbx.sandboxId,
  'E2b-Sandbox-Port': '49999', ...extra })

test('create with the default template; state kept across runCode calls; text of the main result', async () => {
  sbx = await Sandbox.create({ envs: { SBX_GREETING: 'from create' }, timeoutMs: 300_000 })
  made.push(sbx)
  await sbx.runCode('x = 1')
  const e = await sbx.runCode('x += 1; x')
  assert.equal(e.text, '2')
  assert.equal(e.results.length, 1)
  assert.equal(e.results[0].isMainResult, true)
  assert.equal(e.error, undefined)
  assert.ok(e.executionCount >= 2, String(e.executionCount))
})

test('stdout and stderr callbacks stream before the execution ends', async () => {
  const seen = []
  const start = Date.now()
  const e = await sbx.runCode(
    'import sys, time\nprint("first", flush=True)\nprint("warn", file=sys.stderr, flush=True)\ntime.sleep(1.5)\nprint("last")',
    {
      onStdout: (m) => seen.push(['out', m.line, Date.now() - start]),
      onStderr: (m) => seen.push(['err', m.line, Date.now() - start]),
    })
  const end = Date.now() - start
  const first = seen.find((s) => s[0] === 'out' && s[1] === 'first\n')
  const warn = seen.find((s) => s[0] === 'err' && s[1] === 'warn\n')
  assert.ok(first && warn, JSON.stringify(seen))
  assert.ok(first[2] < end - 1000, `first line at ${first[2]} ms, end at ${end} ms`)
  assert.deepEqual(e.logs.stdout, ['first\n', 'last\n'])
  assert.deepEqual(e.logs.stderr, ['warn\n'])
})

test("an exception's error.name, value and traceback", async () => {
  const errors = []
  const e = await sbx.runCode('def f():\n    return 1 / 0\nf()', { onError: (err) => errors.push(err) })
  assert.equal(e.error.name, 'ZeroDivisionError')
  assert.equal(e.error.value, 'division by zero')
  assert.match(e.error.traceback, /ZeroDivisionError/)
  assert.match(e.error.traceback, /return 1 \/ 0/)
  assert.doesNotMatch(e.error.traceback, /\x1b\[/) // no colour codes
  assert.equal(errors.length, 1)
  assert.equal((await sbx.runCode('x')).text, '2') // the context goes on
})

test('a matplotlib figure comes back as png, with its chart', async () => {
  const e = await sbx.runCode(
    'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 1], label="a")\nplt.title("T")\nplt.show()')
  assert.equal(e.error, undefined, JSON.stringify(e.error))
  const png = e.results.find((r) => r.png)
  assert.ok(png, JSON.stringify(e.results.map((r) => r.formats())))
  assert.equal(Buffer.from(png.png, 'base64').subarray(1, 4).toString(), 'PNG')
  assert.equal(png.chart.type, 'line')
  assert.equal(png.chart.title, 'T')
  assert.deepEqual(png.chart.elements[0].points, [[1, 4], [2, 5], [3, 1]])
})

test('a DataFrame as html and data; a dict as json', async () => {
  const e = await sbx.runCode('import pandas as pd\npd.DataFrame({"a": [1, 2], "b": ["x", "y"]})')
  assert.match(e.results[0].html, /<table/)
  assert.deepEqual(e.results[0].data, { a: [1, 2], b: ['x', 'y'] })
  const d = await sbx.runCode('{"k": [1, 2]}')
  assert.deepEqual(d.results[0].json, { k: [1, 2] })
})

test('createCodeContext with cwd, listCodeContexts, restartCodeContext, removeCodeContext', async () => {
  const ctx = await sbx.createCodeContext({ cwd: '/tmp' })
  assert.match(ctx.id, /^[0-9a-f-]{36}$/)
  assert.equal(ctx.language, 'python')
  assert.equal(ctx.cwd, '/tmp')
  assert.equal((await sbx.runCode('import os; os.getcwd()', { context: ctx })).text, '/tmp')
  await sbx.runCode('y = 42', { context: ctx })
  assert.equal((await sbx.runCode('y', { context: ctx })).text, '42')
  const list = await sbx.listCodeContexts()
  assert.ok(list.some((c) => c.id === ctx.id && c.cwd === '/tmp'), JSON.stringify(list))
  assert.ok(list.some((c) => c.language === 'python' && c.cwd === '/home/user'), JSON.stringify(list))
  assert.ok(list.some((c) => c.language === 'javascript'), JSON.stringify(list)) // the default contexts
  await sbx.restartCodeContext(ctx)
  const gone = await sbx.runCode('y', { context: ctx })
  assert.equal(gone.error.name, 'NameError')
  assert.equal((await sbx.runCode('x')).text, '2') // other contexts keep their state
  await sbx.removeCodeContext(ctx.id)
  assert.ok(!(await sbx.listCodeContexts()).some((c) => c.id === ctx.id))
  await assert.rejects(sbx.runCode('1', { context: ctx, ...failing }), (e) => e instanceof NotFoundError && /not found/.test(e.message))
})

test('languages js and bash, each a context of its own with state', async () => {
  const js = await sbx.runCode('const n = 20; console.log("hi from node"); n + 22', { language: 'js' })
  assert.equal(js.text, '42')
  assert.deepEqual(js.logs.stdout, ['hi from node\n'])
  assert.equal((await sbx.runCode('n * 2', { language: 'javascript' })).text, '40')
  const jerr = await sbx.runCode('null.x', { language: 'js' })
  assert.equal(jerr.error.name, 'TypeError')
  const sh = await sbx.runCode('V=7; cd /tmp; echo "v=$V"', { language: 'bash' })
  assert.deepEqual(sh.logs.stdout, ['v=7\n'])
  const sh2 = await sbx.runCode('echo "$V $(pwd)"; ls /nonexistent', { language: 'bash' })
  assert.deepEqual(sh2.logs.stdout, ['7 /tmp\n'])
  assert.match(sh2.logs.stderr.join(''), /nonexistent/)
  assert.equal(sh2.error.value, '2')
  const bctx = await sbx.createCodeContext({ language: 'bash', cwd: '/' })
  assert.deepEqual((await sbx.runCode('pwd', { context: bctx })).logs.stdout, ['/\n'])
})

test("envs per run, over the sandbox's own", async () => {
  const e = await sbx.runCode('import os; (os.environ["FOO"], os.environ["SBX_GREETING"])', { envs: { FOO: 'bar' } })
  assert.equal(e.text, "('bar', 'from create')")
  const after = await sbx.runCode('import os; os.environ.get("FOO", "unset")')
  assert.equal(after.text, 'unset')
  const q = await sbx.runCode('import os; print(os.environ["Q"], end="")', { envs: { Q: `it's "quoted"\n$x` } })
  assert.deepEqual(q.logs.stdout, [`it's "quoted"\n$x`])
  const js = await sbx.runCode('process.env.FOO + " " + process.env.SBX_GREETING', { language: 'js', envs: { FOO: 'js' } })
  assert.equal(js.text, 'js from create')
  const sh = await sbx.runCode('echo "$FOO"', { language: 'bash', envs: { FOO: 'sh' } })
  assert.deepEqual(sh.logs.stdout, ['sh\n'])
})

test('a timeoutMs interrupts a while True loop and leaves the context usable', async () => {
  await sbx.runCode('z = 5')
  const t0 = Date.now()
  await assert.rejects(sbx.runCode('while True:\n    pass', { timeoutMs: 2000 }), /timed out|timeout/i)
  assert.ok(Date.now() - t0 < 10_000)
  const e = await sbx.runCode('z + 1', { timeoutMs: 15_000 })
  assert.equal(e.text, '6', JSON.stringify(e))
  await assert.rejects(sbx.runCode('while (true) {}', { language: 'js', timeoutMs: 2000 }))
  assert.equal((await sbx.runCode('n', { language: 'js', timeoutMs: 15_000 })).text, '20')
})

test('bad input: malformed JSON, both context and language, unknown context, unknown language', async () => {
  const bad = await fetch(`${jupyter()}/execute`, { method: 'POST', headers: headers({ 'X-Access-Token': sbx.envdAccessToken }), body: '{"code": ' })
  assert.equal(bad.status, 422)
  assert.equal((await bad.json()).detail[0].type, 'json_invalid')
  const both = await fetch(`${jupyter()}/execute`, { method: 'POST', headers: headers({ 'X-Access-Token': sbx.envdAccessToken }),
    body: JSON.stringify({ code: '1', context_id: 'x', language: 'python' }) })
  assert.equal(both.status, 400)
  assert.match(await both.text(), /Only one of context_id or language/)
  await assert.rejects(sbx.runCode('1', { context: { id: 'no-such-context' }, ...failing }),
    (e) => e instanceof NotFoundError && /Context no-such-context not found/.test(e.message))
  await assert.rejects(sbx.runCode('1', { language: 'cobol', ...failing }),
    (e) => e instanceof NotFoundError && /cobol/.test(e.message))
  await assert.rejects(sbx.createCodeContext({ language: 'cobol' }), (e) => e instanceof NotFoundError)
  assert.equal((await sbx.runCode('x')).text, '2')
})

test('X-Access-Token is checked as envd checks it', async () => {
  const body = JSON.stringify({ code: '1' })
  assert.equal((await fetch(`${jupyter()}/execute`, { method: 'POST', headers: headers(), body })).status, 401)
  assert.equal((await fetch(`${jupyter()}/execute`, { method: 'POST', headers: headers({ 'X-Access-Token': 'wrong' }), body })).status, 401)
  const ok = await fetch(`${jupyter()}/execute`, { method: 'POST', headers: headers({ 'X-Access-Token': sbx.envdAccessToken }), body })
  assert.equal(ok.status, 200)
  assert.match(await ok.text(), /"end_of_execution"/)
  const health = await fetch(`${jupyter()}/health`, { headers: headers() })
  assert.equal(health.status, 200)
})

test('a kernel killed mid-run: an error line, a new kernel, and the server serves the others', async () => {
  const ctx = await sbx.createCodeContext()
  await sbx.runCode('w = 1', { context: ctx })
  const pid = (await sbx.runCode('import os; os.getpid()', { context: ctx })).text
  const run = sbx.runCode('import time; time.sleep(30)', { context: ctx, timeoutMs: 20_000 })
  await new Promise((r) => setTimeout(r, 1000))
  await sbx.commands.run(`kill -9 ${pid}`)
  const e = await run
  assert.equal(e.error.name, 'ContextRestarting')
  assert.match(e.error.value, /died \(killed by signal 9\)/)
  assert.equal((await sbx.runCode('x')).text, '2') // another context
  const again = await sbx.runCode('w', { context: ctx }) // the killed one, on its new kernel
  assert.equal(again.error.name, 'NameError')
  assert.equal((await sbx.runCode('1 + 1', { context: ctx })).text, '2')
})
