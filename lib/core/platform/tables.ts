/**
 * Caller-owned page tables (DomainTypeUnmanaged): ConfigureDomain, FlushDomain,
 * FlushDomainByVaList, and QueryInputMappings (the Arm64 stream IDs such a table serves).
 */
import { DomainConfigurationArm64, DomainConfigurationX64 } from '../../wdk/constants.js';
import type { DOMAIN_CONFIGURATION, INPUT_MAPPING_ELEMENT } from '../../wdk/types.js';
import type { IommuDmaDomain, PhysicalDeviceObject } from '../objects.js';
import { viaBackend } from './backend-call.js';
import type { PlatformContext } from './context.js';
import { checkPdo, closeDevice, openDevice } from './devices.js';
import type { DomainState } from './state.js';
import { PAGE_MASK, invalidArg, statusError } from './validate.js';

function unmanaged(ctx: PlatformContext, Domain: IommuDmaDomain, op: string): DomainState {
  const dom = ctx.reg.domain(Domain, op, 1);
  if (dom.kind !== 'unmanaged') throw invalidArg(op, 1, 'Domain', 'is not a caller-owned (DomainTypeUnmanaged / OsManagedPageTable = FALSE) domain');
  return dom;
}

/** IOMMU_DOMAIN_CONFIGURE. */
export function configureDomain(ctx: PlatformContext, Domain: IommuDmaDomain, Configuration: DOMAIN_CONFIGURATION): void {
  const op = 'ConfigureDomain';
  ctx.live(op);
  const dom = unmanaged(ctx, Domain, op);
  if (!Configuration || typeof Configuration !== 'object') throw invalidArg(op, 2, 'Configuration', 'must be a DOMAIN_CONFIGURATION');
  if (Configuration.Type === DomainConfigurationX64) throw statusError('STATUS_NOT_SUPPORTED', op, 'DomainConfigurationX64 is reserved for the system', 'Configuration');
  if (Configuration.Type !== DomainConfigurationArm64) throw invalidArg(op, 2, 'Configuration', `Type ${String(Configuration.Type)} is not DomainConfigurationArm64`);
  const a = Configuration.Arm64;
  if (!a || typeof a.Ttbr0 !== 'bigint' || typeof a.Ttbr1 !== 'bigint') throw invalidArg(op, 2, 'Configuration', 'Arm64 needs bigint Ttbr0 and Ttbr1');
  if ((a.Ttbr0 & PAGE_MASK) !== 0n || (a.Ttbr1 & PAGE_MASK) !== 0n) throw invalidArg(op, 2, 'Configuration', 'Ttbr0/Ttbr1 must be page-aligned table addresses');
  for (const k of ['InputSize0', 'InputSize1'] as const) {
    const v = a[k];
    if (!Number.isInteger(v) || v < 0 || v > 48) throw invalidArg(op, 2, 'Configuration', `Arm64.${k} must be 0..48 bits`);
  }
  viaBackend(op, () =>
    ctx.backend.configureDomain(dom.id, {
      ttbr0: a.Ttbr0,
      ttbr1: a.Ttbr1,
      mair0: a.Mair0 >>> 0,
      mair1: a.Mair1 >>> 0,
      inputSize0: a.InputSize0,
      inputSize1: a.InputSize1,
      coherentTableWalks: !!a.CoherentTableWalks,
      translationEnabled: !!a.TranslationEnabled,
    }),
  );
  dom.configured = true;
}

/** IOMMU_FLUSH_DOMAIN. */
export function flushDomain(ctx: PlatformContext, Domain: IommuDmaDomain): void {
  const op = 'FlushDomain';
  ctx.live(op);
  const dom = unmanaged(ctx, Domain, op);
  viaBackend(op, () => ctx.backend.flushDomain(dom.id));
}

/** IOMMU_FLUSH_DOMAIN_VA_LIST. `VaList`: the addresses (bigint) to invalidate. */
export function flushDomainByVaList(ctx: PlatformContext, Domain: IommuDmaDomain, LastLevel: boolean, Number_: number, VaList: readonly bigint[] | BigUint64Array): void {
  const op = 'FlushDomainByVaList';
  ctx.live(op);
  const dom = unmanaged(ctx, Domain, op);
  if (typeof LastLevel !== 'boolean') throw invalidArg(op, 2, 'LastLevel', 'must be a boolean');
  if (!Number.isInteger(Number_) || Number_ < 0) throw invalidArg(op, 3, 'Number', 'must be a non-negative integer');
  if (!(VaList instanceof BigUint64Array) && !Array.isArray(VaList)) throw invalidArg(op, 4, 'VaList', 'must be an array of bigint addresses');
  if (VaList.length < Number_) throw invalidArg(op, 4, 'VaList', `holds ${VaList.length} entries, fewer than Number (${Number_})`);
  const list: bigint[] = [];
  for (let i = 0; i < Number_; i++) {
    const v = VaList[i];
    if (typeof v !== 'bigint') throw invalidArg(op, 4, 'VaList', `entry ${i} is not a bigint`);
    list.push(v);
  }
  viaBackend(op, () => ctx.backend.flushDomain(dom.id, list, LastLevel));
}

/** IOMMU_QUERY_INPUT_MAPPINGS: returns { Buffer, ReturnLength }; BufferLength counts elements. */
export function queryInputMappings(ctx: PlatformContext, PhysicalDeviceObject: PhysicalDeviceObject, BufferLength?: number): { Buffer: INPUT_MAPPING_ELEMENT[]; ReturnLength: number } {
  const op = 'QueryInputMappings';
  ctx.live(op);
  const pdo = checkPdo(ctx, PhysicalDeviceObject, op, 1);
  if (ctx.backend.capabilities.arch !== 'arm64') {
    throw statusError('STATUS_NOT_SUPPORTED', op, 'input-mapping (stream) IDs exist on Arm64 only; this platform is x86_64');
  }
  const existing = ctx.byPdo.get(pdo);
  const d = existing ?? openDevice(ctx, pdo, op, false, false);
  let ids: number[];
  try {
    ids = viaBackend(op, () => ctx.backend.inputMappingIds(d.id));
  } finally {
    if (!existing) closeDevice(ctx, d);
  }
  if (BufferLength !== undefined) {
    if (!Number.isInteger(BufferLength) || BufferLength < 0) throw invalidArg(op, 3, 'BufferLength', 'must be a non-negative integer (elements)');
    if (BufferLength < ids.length) {
      const e = statusError('STATUS_BUFFER_TOO_SMALL', op, `BufferLength ${BufferLength} < ${ids.length} input mappings`, 'BufferLength');
      Object.defineProperty(e, 'ReturnLength', { value: ids.length, enumerable: true });
      throw e;
    }
  }
  return { Buffer: ids.map((InputMappingId) => ({ InputMappingId })), ReturnLength: ids.length };
}
