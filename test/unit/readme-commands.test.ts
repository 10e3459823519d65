/**
 * Every command of the README's shell blocks is placed (run here, in the VM suite, or not run with a
 * reason), and the host ones run here exactly as written. Needs `npm run build` (`npm test` does it).
 */
import { describe, expect, it } from 'vitest';
import {
  README_COMMANDS,
  placedReadmeCommands,
  readmeCommands,
  readReadme,
  runAndCheck,
  splitShellLine,
  vmKernelOf,
} from '../support/readme-commands.js';

const readme = readReadme();

describe('README commands: extraction', () => {
  it('splits a line into its commands: comment dropped, && split, quotes respected', () => {
    expect(splitShellLine('npm install && npx dma-iommu selftest      # build, then run')).toEqual(['npm install', 'npx dma-iommu selftest']);
    expect(splitShellLine(`node -e "console.log('a # b && c')"  # note`)).toEqual([`node -e "console.log('a # b && c')"`]);
    expect(splitShellLine(`echo 'x'"y#z" a#b`)).toEqual([`echo 'x'"y#z" a#b`]);
    expect(splitShellLine('# only a comment')).toEqual([]);
    expect(() => splitShellLine('a && && b')).toThrow(/empty command around &&/);
    expect(() => splitShellLine(`echo "unterminated`)).toThrow(/unterminated " quote/);
  });

  it('reads sh/bash/console blocks (continuations joined), skips js, refuses unknown fence languages', () => {
    const doc = [
      '# Title', '```sh', 'a --x \\', '  --y   # c', '', 'b && c', '```',
      '```js', 'not.a.command()', '```',
      '```console', '$ d', 'output line', '```',
    ].join('\n');
    expect(readmeCommands(doc)).toEqual([
      { text: 'a --x   --y', line: 3 },
      { text: 'b', line: 6 },
      { text: 'c', line: 6 },
      { text: 'd', line: 12 },
    ]);
    expect(() => readmeCommands('```python\nprint(1)\n```')).toThrow(/README.md:1: fenced block with language 'python'/);
    expect(() => readmeCommands('```\nnpm test\n```')).toThrow(/language ''/);
    expect(() => readmeCommands('```sh\nnpm test\n')).toThrow(/never closed/);
  });

  it('a command that no test runs and no entry excuses fails, naming the line and the rule', () => {
    const edited = readme.replace('```sh\n', '```sh\nnpx dma-iommu frobnicate --now   # new!\n');
    expect(() => placedReadmeCommands(edited)).toThrow(/README.md shows commands that no test runs:\n {2}line \d+: npx dma-iommu frobnicate --now\n.*README_COMMANDS/);
  });

  it('finds the VM line kernel the way the harness does', () => {
    expect(vmKernelOf('npx dma-iommu vm run -- node -e x')).toBe('type1');
    expect(vmKernelOf('npx dma-iommu vm run --kernel iommufd -- npx dma-iommu selftest')).toBe('iommufd');
    expect(vmKernelOf('npx dma-iommu vm run -- sh -c "echo --kernel iommufd"')).toBe('type1');
  });
});

describe('README commands: README.md', () => {
  const placed = placedReadmeCommands(readme);

  it('every command is placed, every entry is still in the README, and variants substitute something', () => {
    expect(placed.length).toBeGreaterThan(0);
    const shown = new Set(placed.map((c) => c.text));
    expect(Object.keys(README_COMMANDS).filter((k) => !shown.has(k)), 'README_COMMANDS entries no longer in README.md').toEqual([]);
    for (const c of placed) {
      if (c.placement.run === 'no') expect(c.placement.why.length, c.text).toBeGreaterThan(40);
      if (c.placement.run === 'vm') {
        expect(c.text, 'a vm command is a dma-iommu vm command').toMatch(/^npx dma-iommu vm /);
        for (const [from] of c.placement.variants ?? []) expect(c.text).toContain(from);
      }
    }
  });

  const host = placed.filter((c) => c.placement.run === 'host');
  it.each(host.map((c) => [c.text, c]))('runs on the host as written: %s', async (_text, c) => {
    await runAndCheck(c.text, c.placement, 100_000);
  }, 120_000);
});
