#!/usr/bin/env node
// `npm run docs:check`: regenerate the API reference (TypeDoc, typedoc.json) into a temporary
// directory and fail, naming the files, when TypeDoc reports a validation warning (an undocumented
// or unexported public symbol, a broken link: typedoc.json treats them as errors) or when the
// committed docs/api differs from what the code generates. Fix: document the symbol, then
// `npm run docs` and commit docs/api.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'docs', 'api');
const out = mkdtempSync(join(tmpdir(), 'dma-iommu-docs-'));

function files(dir) {
  if (!existsSync(dir)) return [];
  const list = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else list.push(relative(dir, p));
    }
  };
  walk(dir);
  return list.sort();
}

let failed = false;
try {
  const typedoc = join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
  const r = spawnSync(process.execPath, [typedoc, '--out', out], { cwd: root, encoding: 'utf8' });
  const log = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  const warnings = log.split('\n').filter((l) => /^\[(warning|error)\]/.test(l) && !/^\[warning\] Found \d+ errors/.test(l));
  if (r.status !== 0 || warnings.length > 0) {
    failed = true;
    console.error(`docs:check: TypeDoc reported ${warnings.length} problem(s) (exit ${r.status}):`);
    for (const w of warnings) console.error(`  ${w}`);
    if (warnings.length === 0) console.error(log);
  } else {
    const want = files(out);
    const have = files(committed);
    const haveSet = new Set(have);
    const wantSet = new Set(want);
    const missing = want.filter((f) => !haveSet.has(f));
    const extra = have.filter((f) => !wantSet.has(f));
    const differ = want.filter((f) => haveSet.has(f) && !readFileSync(join(out, f)).equals(readFileSync(join(committed, f))));
    if (missing.length + extra.length + differ.length > 0) {
      failed = true;
      console.error('docs:check: docs/api is out of date with the code (run `npm run docs` and commit docs/api):');
      for (const f of missing) console.error(`  missing  docs/api/${f}`);
      for (const f of extra) console.error(`  stale    docs/api/${f}`);
      for (const f of differ) console.error(`  differs  docs/api/${f}`);
    } else {
      console.log(`docs:check: ok (${want.length} files in docs/api match the code; no undocumented exports)`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
