// typescript.test.mjs -- index.d.ts type-checks a TypeScript program that
// uses the whole API (examples/app.ts, with @ts-expect-error lines proving
// that wrong calls are refused): tsc --noEmit --strict.  Skipped when the
// typescript npm package is not installed ($RSN_NODE_TOOLS, filled by
// tools/node_tools.sh).  Runs under Node only: tsc is a Node program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PKG, IS_BUN } from './helpers.mjs';

const tsc = process.env.RSN_NODE_TOOLS && path.join(process.env.RSN_NODE_TOOLS, 'node_modules', '.bin', 'tsc');
const skip = IS_BUN ? 'runs under Node only'
  : !tsc || !fs.existsSync(tsc) ? `typescript is not installed (${tsc || 'RSN_NODE_TOOLS unset'})` : false;

test('index.d.ts: tsc --noEmit --strict on examples/app.ts', { skip, timeout: 300000 }, () => {
  const r = spawnSync(tsc, ['-p', path.join(PKG, 'examples', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
