// The JavaScript side of javascript_kernel.py: Node.js runs each cell in
// its main context (vm.runInThisContext), so globals, require()d modules
// and top-level declarations stay between cells. Cells come as JSON lines
// on the fd in E2B_JS_CELLS_FD; each answer is one JSON line on the fd in
// E2B_JS_ANSWERS_FD: {"ok": true, "text":
// util.inspect of the last value} or {"ok": false, "name", "message",
// "stack"}. A cell whose value is a promise (an async function's result, or
// a cell run with top-level await) is answered once it settles. SIGINT
// while a cell runs interrupts it (breakOnSigint); idle, it is ignored.
'use strict';
const vm = require('vm');
const util = require('util');
const fs = require('fs');
const readline = require('readline');

globalThis.require = require;
globalThis.module = module;
process.on('SIGINT', () => {});

const cellsFd = Number(process.env.E2B_JS_CELLS_FD);
const answersFd = Number(process.env.E2B_JS_ANSWERS_FD);
delete process.env.E2B_JS_CELLS_FD;
delete process.env.E2B_JS_ANSWERS_FD;

function answer(o) {
  fs.writeSync(answersFd, JSON.stringify(o) + '\n');
}

function show(v) {
  return v === undefined ? null : util.inspect(v, { depth: 4, colors: false });
}

function fail(e) {
  if (e instanceof Error || (e && typeof e === 'object' && 'message' in e)) {
    answer({ ok: false, name: String(e.name || 'Error'), message: String(e.message), stack: String(e.stack || '') });
  } else {
    answer({ ok: false, name: 'Error', message: util.inspect(e), stack: '' });
  }
}

// top-level await: wrapped in an async function whose last expression
// statement is returned (so `await f(); x` still shows x)
function wrapAsync(code) {
  return '(async () => {\n' + code + '\n})()';
}

let queue = Promise.resolve();
const rl = readline.createInterface({ input: fs.createReadStream(null, { fd: cellsFd }), crlfDelay: Infinity });
rl.on('line', (line) => {
  queue = queue.then(() => run(JSON.parse(line).code));
});
rl.on('close', () => process.exit(0));

async function run(code) {
  let value;
  try {
    try {
      value = vm.runInThisContext(code, { filename: 'cell', breakOnSigint: true, displayErrors: false });
    } catch (e) {
      if (e instanceof SyntaxError && /await/.test(code) && /await is only valid|Unexpected reserved word|Unexpected identifier/.test(e.message)) {
        value = vm.runInThisContext(wrapAsync(code), { filename: 'cell', breakOnSigint: true, displayErrors: false });
      } else {
        throw e;
      }
    }
    if (value && typeof value.then === 'function') value = await value;
    // let output written by callbacks of this tick reach the pipes first
    await new Promise((r) => setImmediate(r));
    answer({ ok: true, text: show(value) });
  } catch (e) {
    if (e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
      answer({ ok: false, name: 'KeyboardInterrupt', message: 'Script execution interrupted.', stack: '' });
    } else {
      fail(e);
    }
  }
}
