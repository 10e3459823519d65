#!/usr/bin/env node
// npm `install` script: build the native addon with node-gyp. Never fails the install: without a
// compiler (or on a platform the addon does not support) it prints one line, records why in
// build/addon-status.json, and exits 0 — the package then uses the simulator.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const statusFile = join(root, 'build', 'addon-status.json');

function record(status) {
  try {
    mkdirSync(dirname(statusFile), { recursive: true });
    writeFileSync(statusFile, `${JSON.stringify({ ...status, at: new Date().toISOString() }, null, 2)}\n`);
  } catch {
    /* a read-only tree: the line on stderr is all we can do */
  }
}

function fail(reason) {
  record({ built: false, reason });
  process.stderr.write(`dma-iommu: native addon not built (${reason}); the simulator will be used\n`);
  process.exit(0);
}

if (process.env.DMA_IOMMU_SKIP_NATIVE_BUILD) fail('DMA_IOMMU_SKIP_NATIVE_BUILD is set');
if (process.platform !== 'linux') fail(`platform ${process.platform} has no VFIO/iommufd`);

// node-gyp: the one npm runs scripts with, else npm's bundled copy, else a local install.
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const npmDir = process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..') : null;
  if (npmDir) candidates.push(join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not installed locally */
  }
  return candidates.find((c) => existsSync(c)) ?? null;
}

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found');

const args = [gyp, 'rebuild'];
// Offline builds: use the installed Node headers when npm did not say where they are.
if (!process.env.npm_config_nodedir) {
  const prefix = join(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
}

const started = Date.now();
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: process.env });
if (r.error) fail(`node-gyp could not run: ${r.error.message}`);
if (r.status !== 0) {
  const out = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const line =
    out.split('\n').find((l) => /not found|No such file|command not found|error:/i.test(l) && !/^gyp info/.test(l)) ??
    `node-gyp exited with ${r.status}`;
  fail(line.replace(/^(gyp ERR!\s*)?(stack\s+)?(Error:\s*)?/, '').trim().slice(0, 200));
}
record({ built: true, tool: 'node-gyp', ms: Date.now() - started });
