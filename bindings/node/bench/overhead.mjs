// overhead.mjs -- what the binding costs over the C library, measured in one
// run: single-search p50 and batch QPS through the C library directly
// (rsn_node_cbench, bench/csearch.c), through the binding under Node, and
// under Bun, each in a process of its own, alternating, R rounds; medians
// of the rounds are reported.
//
//   node bench/overhead.mjs --db /work/data/c100k.db [--queries 100] [--k 10]
//        [--rounds 3] [--batch-reps 5] [--threads T] [--hydrate] [--tiny] [--json]
//
// "C" is rsn_search called from C with the clock read around the call plus
// rsn_results_free, measured two ways: a loop in the addon
// (db._benchSearch, src/search.c) in the same process, on the same arena and
// thread, interleaved in blocks of 10 queries with the binding's calls (the
// figure the ratios use, so that a busy machine slows both alike); and
// rsn_node_cbench (bench/csearch.c), a C program of its own, as a check.
// "Node"/"Bun" is db.searchSync(query) (and await db.search(query), one at
// a time) timed around the call: converting the options, the call into the
// addon, the search, the copy of the results into JS values and freeing
// the C results.  Because a search's own time varies by more than the
// binding costs on a shared machine, the binding's cost is also measured
// call by call: the JS call's time minus the time of the library call
// inside it (timed in C by the addon, rsn.Db._lastCallUs()).  That paired
// figure is the per-call overhead; the unpaired medians are the context.  Every
// runtime answers the same queries (random unit vectors, fixed seed) on the
// same file opened read-only with the default threads.  --tiny adds a
// 1,000-row database made for the run, where the search itself takes a few
// microseconds and the difference is the binding's own cost.
// No hydration unless --hydrate (the C bench and `resonance bench` skip it).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..', '..', '..');
const rsn = require(path.join(HERE, '..', 'index.js'));
const RUNTIME = process.versions.bun ? 'bun' : 'node';

function args(argv) {
  const o = { db: [], threads: 0, queries: 100, k: 10, rounds: 3, batchReps: 5, warmup: 10, hydrate: false,
              tiny: false, json: false, child: false, qfile: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--db') o.db.push(next());
    else if (a === '--queries') o.queries = Number(next());
    else if (a === '--threads') o.threads = Number(next());
    else if (a === '--k') o.k = Number(next());
    else if (a === '--rounds') o.rounds = Number(next());
    else if (a === '--batch-reps') o.batchReps = Number(next());
    else if (a === '--warmup') o.warmup = Number(next());
    else if (a === '--hydrate') o.hydrate = true;
    else if (a === '--tiny') o.tiny = true;
    else if (a === '--json') o.json = true;
    else if (a === '--child') o.child = true;
    else if (a === '--qfile') o.qfile = next();
    else if (a === '--cbench') o.cbench = next();
    else if (a === '--bun') o.bun = next();
    else if (a === '--help' || a === '-h') {
      const src = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
      const end = src.findIndex((l) => !l.startsWith('//'));
      process.stdout.write(src.slice(0, end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') +
                           '\nOptions: --db FILE (repeatable), --queries N, --k K, --rounds R, ' +
                           '--batch-reps N, --warmup N,\n  --threads T, --hydrate, --tiny, --json, ' +
                           '--cbench PATH (rsn_node_cbench), --bun PATH\n');
      process.exit(0);
    } else throw new Error(`overhead.mjs: unknown argument ${a} (--help lists them)`);
  }
  return o;
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/* ---- child: measure this runtime ---------------------------------------- */

async function child(o) {
  const t0 = performance.now();
  const db = rsn.open(o.db[0], { readonly: true, threads: o.threads });
  const loadMs = performance.now() - t0;
  const d = db.dim;
  const buf = fs.readFileSync(o.qfile);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const nq = all.length / d;
  const qs = Array.from({ length: nq }, (_, i) => all.subarray(i * d, (i + 1) * d));
  const opts = { k: o.k, hydrate: o.hydrate };
  const warm = all.subarray(0, Math.min(o.warmup, nq) * d);
  // Phase 1, before any async call: blocks of 10 queries through the
  // library's own calls (timed in C, in this process: db._benchSearch),
  // then the same queries through searchSync, so both meet the same
  // conditions.  Phase 2 does the same with search() one at a time: an
  // async search runs on a libuv pool thread, whose OpenMP team is another
  // set of threads (the C loop of phase 2 runs in that state too).
  db._benchSearch(false, warm, o.k, o.hydrate);
  for (let i = 0; i < o.warmup; i++) db.searchSync(qs[i % nq], opts);
  const cSync = [], sync = [], pairS = [], cAsync = [], asyncT = [], pairA = [];
  const lastCall = () => rsn.Db._lastCallUs();
  for (let b = 0; b < nq; b += 10) {
    const e = Math.min(nq, b + 10);
    cSync.push(...db._benchSearch(false, all.subarray(b * d, e * d), o.k, o.hydrate));
    for (let i = b; i < e; i++) {
      const a = performance.now();
      db.searchSync(qs[i], opts);
      const us = (performance.now() - a) * 1e3;
      sync.push(us);
      pairS.push(us - lastCall());
    }
  }
  for (let i = 0; i < o.warmup; i++) await db.search(qs[i % nq], opts);
  for (let b = 0; b < nq; b += 10) {
    const e = Math.min(nq, b + 10);
    cAsync.push(...db._benchSearch(false, all.subarray(b * d, e * d), o.k, o.hydrate));
    for (let i = b; i < e; i++) {
      const a = performance.now();
      await db.search(qs[i], opts);
      const us = (performance.now() - a) * 1e3;
      asyncT.push(us);
      pairA.push(us - lastCall());
    }
  }
  const bc = [], bs = [], ba = [], pairB = [];
  for (let i = 0; i < o.batchReps; i++) {
    bc.push(db._benchSearch(true, all, o.k, o.hydrate, 1)[0] / 1e3);
    let a = performance.now();
    db.searchBatchSync(all, opts);
    bs.push(performance.now() - a);
    pairB.push(bs.at(-1) * 1e3 - lastCall());
    a = performance.now();
    await db.searchBatch(all, opts);
    ba.push(performance.now() - a);
  }
  const rows = db.stats().arenaRows;
  await db.close();
  return {
    runtime: RUNTIME, version: process.versions.bun || process.version, rows, dim: d, k: o.k,
    hydrate: o.hydrate ? 1 : 0, queries: nq, load_ms: loadMs,
    c_inproc_p50_us: median(cSync), single_p50_us: median(sync),
    c_inproc_async_phase_p50_us: median(cAsync), async_p50_us: median(asyncT),
    paired_sync_p50_us: median(pairS), paired_async_p50_us: median(pairA),
    paired_batch_us: median(pairB), c_call_in_sync_p50_us: median(sync.map((x, i) => x - pairS[i])),
    c_inproc_batch_ms: median(bc), c_inproc_batch_qps: nq / (median(bc) / 1e3),
    batch_ms: median(bs), batch_qps: nq / (median(bs) / 1e3),
    batch_async_ms: median(ba), batch_async_qps: nq / (median(ba) / 1e3),
  };
}

/* ---- parent: run every runtime, alternating ------------------------------ */

function findBun(o) {
  const cands = [o.bun, process.env.RSN_BUN,
                 process.env.RSN_NODE_TOOLS && path.join(process.env.RSN_NODE_TOOLS, 'node_modules', '.bin', 'bun'),
                 path.join(ROOT, 'build', 'node-tools', 'node_modules', '.bin', 'bun')];
  return cands.find((c) => c && fs.existsSync(c)) || null;
}

function runJson(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

function gaussianUnit(n, d, seed) {
  let a = seed >>> 0;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) {
      const x = Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());
      out[i * d + j] = x;
      s += x * x;
    }
    for (let j = 0; j < d; j++) out[i * d + j] /= Math.sqrt(s);
  }
  return out;
}

function makeTiny(dir) {
  const file = path.join(dir, 'tiny.db');
  const n = 1000, d = 384;
  const db = rsn.open(file, { create: true, dim: d });
  const v = gaussianUnit(n, d, 5);
  db.upsert({ ids: Array.from({ length: n }, (_, i) => `t${i}`), vectors: v,
              titles: Array.from({ length: n }, (_, i) => `Title ${i}`) });
  db.close();
  return file;
}

function measure(o, file, dir, bun, cbench) {
  const probe = rsn.open(file, { readonly: true, lazy: true });
  const d = probe.dim;
  probe.close();
  if (!d) throw new Error(`${file}: no dimension recorded`);
  const qfile = path.join(dir, `q-${d}.f32`);
  const q = gaussianUnit(o.queries, d, 1234);
  fs.writeFileSync(qfile, Buffer.from(q.buffer));
  const self = fileURLToPath(import.meta.url);
  const common = ['--child', '--db', file, '--qfile', qfile, '--k', String(o.k), '--warmup', String(o.warmup),
                  '--threads', String(o.threads),
                  '--batch-reps', String(o.batchReps), ...(o.hydrate ? ['--hydrate'] : [])];
  const runs = { c: [], node: [], bun: [] };
  for (let r = 0; r < o.rounds; r++) {
    runs.c.push(runJson(cbench, [file, qfile, String(o.k), String(o.warmup), o.hydrate ? '1' : '0',
                                 String(o.batchReps), String(o.threads)]));
    runs.node.push(runJson(process.versions.bun ? 'node' : process.execPath,
                           [self, ...common]));
    if (bun) runs.bun.push(runJson(bun, [self, ...common]));
  }
  return { file, runs, threads: o.threads };
}

function summarize(m) {
  const med = (list, key) => (list.length ? median(list.map((x) => x[key])) : null);
  const c = m.runs.c;
  const out = { file: m.file, threads: m.threads, rows: c[0].rows, dim: c[0].dim, k: c[0].k, hydrate: c[0].hydrate,
                queries: c[0].queries, rounds: c.length,
                c_process: { single_p50_us: med(c, 'single_p50_us'), batch_qps: med(c, 'batch_qps') } };
  for (const rt of ['node', 'bun']) {
    const l = m.runs[rt];
    if (!l.length) continue;
    // Ratios per round (each against the C loop of its own process), then
    // the median over rounds.
    const ratio = (a, b) => median(l.map((x) => x[a] / x[b]));
    const diff = (a, b) => median(l.map((x) => x[a] - x[b]));
    out[rt] = {
      version: l[0].version,
      c_inproc_p50_us: med(l, 'c_inproc_p50_us'),
      single_p50_us: med(l, 'single_p50_us'),
      overhead_us: diff('single_p50_us', 'c_inproc_p50_us'),
      overhead_pct: 100 * (ratio('single_p50_us', 'c_inproc_p50_us') - 1),
      async_p50_us: med(l, 'async_p50_us'),
      c_inproc_async_phase_p50_us: med(l, 'c_inproc_async_phase_p50_us'),
      async_overhead_us: diff('async_p50_us', 'c_inproc_async_phase_p50_us'),
      async_overhead_pct: 100 * (ratio('async_p50_us', 'c_inproc_async_phase_p50_us') - 1),
      paired_sync_p50_us: med(l, 'paired_sync_p50_us'),
      paired_async_p50_us: med(l, 'paired_async_p50_us'),
      paired_batch_us: med(l, 'paired_batch_us'),
      paired_sync_pct: 100 * median(l.map((x) => x.paired_sync_p50_us / x.c_call_in_sync_p50_us)),
      c_inproc_batch_qps: med(l, 'c_inproc_batch_qps'),
      batch_qps: med(l, 'batch_qps'), batch_ratio: ratio('batch_qps', 'c_inproc_batch_qps'),
      batch_async_qps: med(l, 'batch_async_qps'), batch_async_ratio: ratio('batch_async_qps', 'c_inproc_batch_qps'),
    };
  }
  return out;
}

function print(s) {
  const f = (x, d = 1) => (x == null ? '-' : x.toFixed(d));
  const sg = (x, d = 1) => (x >= 0 ? '+' : '') + f(x, d);
  console.log(`\n${s.file}: ${s.rows} rows x ${s.dim}, k = ${s.k}, ${s.hydrate ? 'hydrated' : 'no hydration'}, ` +
              `threads ${s.threads || 'all cores'}, ` +
              `${s.queries} queries, median of ${s.rounds} rounds`);
  console.log(`  C in its own process (rsn_node_cbench): single p50 ${f(s.c_process.single_p50_us)} us, ` +
              `batch ${f(s.c_process.batch_qps, 0)} QPS`);
  for (const rt of ['node', 'bun']) {
    const r = s[rt];
    if (!r) continue;
    console.log(`  ${rt} ${r.version}:`);
    console.log(`    single p50, sync:  C loop ${f(r.c_inproc_p50_us)} us | searchSync ${f(r.single_p50_us)} us ` +
                `(${sg(r.overhead_us)} us, ${sg(r.overhead_pct, 2)}%)`);
    console.log(`    single p50, async: C loop ${f(r.c_inproc_async_phase_p50_us)} us | await search() ${f(r.async_p50_us)} us ` +
                `(${sg(r.async_overhead_us)} us, ${sg(r.async_overhead_pct, 2)}%)`);
    console.log(`    the binding's own time per call (JS call time - its library call, paired): ` +
                `p50 ${f(r.paired_sync_p50_us)} us sync (${f(r.paired_sync_pct, 3)}% of the library call), ` +
                `${f(r.paired_async_p50_us)} us async; ${f(r.paired_batch_us)} us per batch call`);
    console.log(`    batch: C loop ${f(r.c_inproc_batch_qps, 0)} QPS | searchBatchSync ${f(r.batch_qps, 0)} QPS ` +
                `(x${f(r.batch_ratio, 3)}) | searchBatch() ${f(r.batch_async_qps, 0)} QPS (x${f(r.batch_async_ratio, 3)})`);
  }
}

async function main() {
  const o = args(process.argv.slice(2));
  if (o.child) {
    console.log(JSON.stringify(await child(o)));
    return;
  }
  const bun = findBun(o);
  const cbench = o.cbench || path.join(ROOT, 'build', 'bindings', 'node', 'rsn_node_cbench');
  if (!fs.existsSync(cbench)) throw new Error(`no C bench at ${cbench} (build the rsn_node_cbench target)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsn-overhead-'));
  try {
    const files = [...(o.tiny ? [makeTiny(dir)] : []), ...o.db];
    if (!files.length) throw new Error('overhead.mjs: give --db FILE and/or --tiny');
    console.log(`CPU: ${os.cpus()[0]?.model ?? '?'} x ${os.cpus().length}; resonance ${rsn.version.resonance}, ` +
                `ISA ${rsn.version.isa}; node ${process.version}; bun ${bun ? spawnSync(bun, ['--version'], { encoding: 'utf8' }).stdout.trim() : 'not found'}`);
    const out = [];
    for (const file of files) {
      const s = summarize(measure(o, file, dir, bun, cbench));
      out.push(s);
      print(s);
    }
    if (o.json) console.log(JSON.stringify(out));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exitCode = 1;
});
