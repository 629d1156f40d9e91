// Outbound network rules through the official SDK against `e2b serve`
// (run-network.sh: the far side is a network namespace of the test's own, a
// veth pair away; HOST and OTHER are its two addresses, good.test and
// bad.test both name HOST, rebind.test names HOST and then OTHER,
// mismatch.test names HOST, whose certificate is good.test's).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Sandbox, Secret, ALL_TRAFFIC } from 'e2b'

const HOST = process.env.SDK_NET_HOST
const OTHER = process.env.SDK_NET_OTHER
const made = []
after(async () => {
  for (const id of made) await Sandbox.kill(id).catch(() => {})
  await Secret.destroy(`net-token-${process.pid}`).catch(() => {})
})

async function create(opts) {
  const s = await Sandbox.create('host', { timeoutMs: 180_000, ...opts })
  made.push(s.sandboxId)
  return s
}

// "open", or why a TCP connection from inside the sandbox failed
const CONNECT = `python3 -c "import socket,sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); print('open')
except OSError as e:
    print(e)"`
async function connect(s, host, port) {
  return (await s.commands.run(`${CONNECT} ${host} ${port}`)).stdout.trim()
}
// curl's answer, or "refused (<exit status>)"
async function curl(s, args) {
  try {
    return (await s.commands.run(`curl -sS -m 5 ${args}`)).stdout.trim()
  } catch (e) {
    return `refused (${e.result?.exitCode})`
  }
}

// the egress rules nftables holds in the sandbox's network namespace
function nft(s) {
  const st = JSON.parse(readFileSync(`${process.env.E2B_RUNTIME_DIR}/sandboxes/${s.sandboxId}/state.json`))
  return execFileSync('nsenter', ['-t', String(st.initPid), '-n', 'nft', 'list', 'table', 'inet', 'e2b_egress']).toString()
}

test('denyOut ALL_TRAFFIC with allowOut the test host lets exactly that host through', async () => {
  const s = await create({ network: { denyOut: [ALL_TRAFFIC], allowOut: [HOST] } })
  assert.equal(await connect(s, HOST, 8080), 'open')
  assert.equal(await curl(s, `http://${HOST}/`), `host=${HOST} token=None port=80`)
  assert.notEqual(await connect(s, OTHER, 8080), 'open')
  assert.notEqual(await connect(s, OTHER, 80), 'open')
  assert.notEqual(await connect(s, '10.0.2.2', 80), 'open')
  const info = await s.getInfo()
  assert.deepEqual(info.network.allowOut, [HOST])
  assert.deepEqual(info.network.denyOut, [ALL_TRAFFIC])
})

test('a domain rule allows one name and refuses another served by the same host (HTTP Host, TLS SNI)', async () => {
  const s = await create({ network: { denyOut: [ALL_TRAFFIC], allowOut: ['good.test'] } })
  assert.equal(await curl(s, 'http://good.test/'), 'host=good.test token=None port=80')
  assert.match(await curl(s, 'http://bad.test/'), /^refused/)
  assert.equal(await curl(s, '-k https://good.test/'), 'host=good.test token=None port=443')
  // with ALL_TRAFFIC denied, DNS answers only the allowed names: no channel out for others
  assert.equal((await s.commands.run('getent hosts good.test bad.test || true')).stdout.trim().split(/\s+/).join(' '),
    `${HOST} good.test`)
  assert.match(await curl(s, '-k https://bad.test/'), /^refused/)
  assert.notEqual(await connect(s, HOST, 8080), 'open', 'a name opens ports 80 and 443 only')
})

test('updateNetwork changes the rules of a running sandbox live', async () => {
  const s = await create({ network: { denyOut: [ALL_TRAFFIC], allowOut: ['good.test'] } })
  assert.equal(await curl(s, 'http://good.test/'), 'host=good.test token=None port=80')
  await s.updateNetwork({ denyOut: [ALL_TRAFFIC], allowOut: ['bad.test', OTHER] })
  assert.match(await curl(s, 'http://good.test/'), /^refused/)
  assert.equal(await curl(s, 'http://bad.test/'), 'host=bad.test token=None port=80')
  assert.equal(await connect(s, OTHER, 8080), 'open')
  assert.deepEqual((await s.getInfo()).network.allowOut, ['bad.test', OTHER])
  await s.updateNetwork({}) // every rule cleared
  assert.equal(await curl(s, 'http://good.test/'), 'host=good.test token=None port=80')
  assert.equal(await curl(s, `-H 'Host: bad.test' http://${OTHER}/`), 'host=bad.test token=None port=80')
  assert.equal(await connect(s, HOST, 8080), 'open')
  await s.updateNetwork({ denyOut: [HOST] })
  assert.notEqual(await connect(s, HOST, 8080), 'open')
  assert.equal(await connect(s, OTHER, 8080), 'open')
  // a sandbox made without any network has nothing to give rules to
  const n = await create({ allowInternetAccess: false })
  await assert.rejects(n.updateNetwork({ allowOut: [HOST] }), /without internet access/)
})

test('attack: a DNS rebinding of an allowed name to a denied address is refused', async () => {
  const s = await create({ network: { denyOut: [ALL_TRAFFIC, OTHER], allowOut: ['rebind.test'] } })
  assert.equal(await curl(s, 'http://rebind.test/'), 'host=rebind.test token=None port=80')
  assert.match(await curl(s, 'http://rebind.test/'), /^refused/, 'the second answer is OTHER')
  assert.match(await curl(s, '-k https://rebind.test/'), /^refused/)
})

test('attack: raw addresses that skip DNS are refused', async () => {
  const s = await create({ network: { denyOut: [ALL_TRAFFIC], allowOut: ['good.test'] } })
  assert.match(await curl(s, `-H 'Host: good.test' http://${OTHER}/`), /^refused/)
  assert.match(await curl(s, `--resolve good.test:80:${OTHER} http://good.test/`), /^refused/)
  assert.match(await curl(s, `-k --resolve good.test:443:${OTHER} https://good.test/`), /^refused/)
  assert.match(await curl(s, `-k https://${HOST}/`), /^refused/, 'TLS without a name')
  assert.notEqual(await connect(s, HOST, 8080), 'open')
})

test('attack: IPv6 around an IPv4 rule is refused', async () => {
  const s = await create({ network: { denyOut: [OTHER] } })
  assert.equal(await connect(s, HOST, 8080), 'open')
  assert.notEqual(await connect(s, OTHER, 8080), 'open')
  const [a, b, c, d] = OTHER.split('.').map(Number)
  const hex = (x, y) => ((x << 8) | y).toString(16)
  for (const v6 of [`::ffff:${OTHER}`, `64:ff9b::${hex(a, b)}:${hex(c, d)}`, `2002:${hex(a, b)}:${hex(c, d)}::1`])
    assert.notEqual(await connect(s, v6, 8080), 'open', v6)
  const rules = nft(s)
  assert.match(rules, new RegExp(`64:ff9b::${hex(a, b)}:${hex(c, d)}`))
  assert.match(rules, new RegExp(`2002:${hex(a, b)}:${hex(c, d)}::/48`))
  const all = await create({ network: { denyOut: [ALL_TRAFFIC] } })
  assert.match(nft(all), /::\/0/, 'ALL_TRAFFIC denies IPv6 too')
})

test('a secret fills the header of a network rule at egress; the sandbox never sees it', async () => {
  const name = `net-token-${process.pid}`
  const value = `sk-${process.pid}-egress-only`
  await Secret.create(name, value)
  const s = await create({
    envs: { CHECK: 'x' },
    network: {
      denyOut: [ALL_TRAFFIC], allowOut: ['good.test'],
      rules: { 'good.test': [{ transform: { headers: { 'X-Token': Secret.fill(name) } } }] },
    },
  })
  assert.equal(await curl(s, `-H 'X-Token: from-the-sandbox' http://good.test/`), `host=good.test token=${value} port=80`)
  assert.match(await curl(s, 'http://bad.test/'), /^refused/)
  // HTTPS too, as E2B's egress proxy does it: the filter ends the TLS with a
  // certificate of its CA, which the sandbox trusts (the system bundle, and
  // NODE_EXTRA_CA_CERTS), and opens its own to the host, verified
  for (let i = 0; i < 2; i++) // a second request: a new connection, the header again
    assert.equal(await curl(s, `-H 'X-Token: from-the-sandbox' https://good.test/`), `host=good.test token=${value} port=443`)
  assert.match(await curl(s, 'https://bad.test/'), /^refused/)
  assert.match((await s.commands.run('curl -sS -v -o /dev/null https://good.test/ 2>&1 | grep -i "issuer:"')).stdout, /e2b egress CA/)
  assert.equal((await s.commands.run('echo $NODE_EXTRA_CA_CERTS; grep -c "BEGIN CERT" $NODE_EXTRA_CA_CERTS')).stdout, '/run/e2b/egress-ca.pem\n1\n')
  // the CA's key never reaches the sandbox; a host without rules keeps its own TLS end to end
  assert.equal((await s.commands.run(`grep -rl "PRIVATE KEY" /run/e2b /etc/ssl/certs 2>/dev/null; true`)).stdout, '')
  assert.equal((await s.commands.run(`env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; true`)).stdout.includes(value), false)
  const info = await s.getInfo()
  assert.equal(info.network.rules['good.test'][0].transform.headers['X-Token'], Secret.fill(name))
  await assert.rejects(create({ network: { rules: { 'good.test': [{ transform: { headers: { 'X-A': Secret.fill('no-such-secret') } } }] } } }),
    /no-such-secret/)
})

test('HTTPS to a host with a rule whose certificate this machine does not trust is refused, never passed on', async () => {
  // mismatch.test is the test host, whose certificate names good.test only
  const s = await create({
    network: {
      denyOut: [ALL_TRAFFIC], allowOut: ['mismatch.test', 'good.test'],
      rules: { 'mismatch.test': [{ transform: { headers: { 'X-Token': 'static-value' } } }] },
    },
  })
  assert.match(await curl(s, 'https://mismatch.test/'), /^refused/)
  const log = readFileSync(`${process.env.E2B_RUNTIME_DIR}/sandboxes/${s.sandboxId}/egress.log`, 'utf8')
  assert.match(log, /the certificate of 'mismatch.test' is not trusted/)
  // no rule for good.test here: its TLS passes whole, the host's own certificate (not trusted in the sandbox)
  assert.match(await curl(s, 'https://good.test/'), /^refused \(60\)/)
  assert.equal(await curl(s, `-k https://good.test/`), `host=good.test token=None port=443`)
})

test('bad rules are refused before anything starts', async () => {
  await assert.rejects(create({ network: { denyOut: ['example.com'] } }), /domain/)
  await assert.rejects(create({ network: { allowOut: ['10.0.0.0/33'] } }), /prefix/)
})
