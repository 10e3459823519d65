/**
 * Kernel-module dependency order without kmod: read `depends=` from each module's .modinfo strings
 * and sort so every module comes after what it needs (the order busybox `insmod` must follow).
 */

/** Canonical module name: `vfio-pci` and `vfio_pci` are the same module. */
export function moduleName(fileOrName: string): string {
  const base = fileOrName.split('/').pop()!;
  return base.replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');
}

/** The `depends=` list of a decompressed .ko image (empty when it depends on nothing). */
export function moduleDepends(ko: Buffer): string[] {
  const key = Buffer.from('\0depends=');
  const at = ko.indexOf(key);
  if (at < 0) return [];
  const start = at + key.length;
  const end = ko.indexOf(0, start);
  const value = ko.subarray(start, end < 0 ? ko.length : end).toString('utf8');
  return value ? value.split(',').map(moduleName) : [];
}

/**
 * Dependency closure of `wanted`, dependencies first. `dependsOf(name)` returns the direct dependencies
 * of a module, or undefined when the module is not available (built in, or missing: an error).
 */
export function loadOrder(wanted: string[], dependsOf: (name: string) => string[] | undefined): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const deps = dependsOf(name);
    if (deps === undefined) throw new Error(`kernel module ${name} not found (needed by ${chain.at(-1) ?? 'the guest'})`);
    state.set(name, 'visiting');
    for (const d of deps) visit(d, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const w of wanted) visit(moduleName(w), []);
  return order;
}
