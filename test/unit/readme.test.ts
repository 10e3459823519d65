/** The README's usage example runs as written (on the simulator). Needs `npm run build`. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

it('the README usage example runs', () => {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const usage = readme.slice(readme.indexOf('## Usage'));
  const code = usage.split('```js')[1].split('```')[0];
  expect(code).toMatch(/IoGetIommuInterfaceEx/);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DMA_IOMMU_BACKEND: 'sim' },
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
});
