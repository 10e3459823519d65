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
import { PAGE_MASK, U64_MAX, booleanField, describe, invalidArg, isUlong, statusError } from './validate.js';

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
  if (!a || typeof a !== 'object' || typeof a.Ttbr0 !== 'bigint' || typeof a.Ttbr1 !== 'bigint') throw invalidArg(op, 2, 'Configuration', 'Arm64 needs bigint Ttbr0 and Ttbr1');
  for (const k of ['Ttbr0', 'Ttbr1'] as const) {
    if (a[k] < 0n || a[k] > U64_MAX) throw invalidArg(op, 2, 'Configuration', `Arm64.${k} must be within 0..2^64-1`);
  }
  if ((a.Ttbr0 & PAGE_MASK) !== 0n || (a.Ttbr1 & PAGE_MASK) !== 0n) throw invalidArg(op, 2, 'Configuration', 'Ttbr0/Ttbr1 must be page-aligned table addresses');
  for (const k of ['Mair0', 'Mair1'] as const) {
    if (!isUlong(a[k])) throw invalidArg(op, 2, 'Configuration', `Arm64.${k} must be a ULONG, an integer 0..2^32-1 (got ${describe(a[k])})`);
  }
  for (const k of ['InputSize0', 'InputSize1'] as const) {
    const v = a[k];
    if (!Number.isInteger(v) || v < 0 || v > 48) throw invalidArg(op, 2, 'Configuration', `Arm64.${k} must be 0..48 bits`);
  }
  const coherentTableWalks = booleanField(a.CoherentTableWalks, op, 2, 'Configuration.Arm64.CoherentTableWalks');
  const translationEnabled = booleanField(a.TranslationEnabled, op, 2, 'Configuration.Arm64.TranslationEnabled');
  // what the kernel refuses in the configuration is the configuration's fault: parameter 2
  viaBackend(
    op,
    () =>
      ctx.backend.configureDomain(dom.id, {
        ttbr0: a.Ttbr0,
        ttbr1: a.Ttbr1,
        mair0: a.Mair0,
        mair1: a.Mair1,
        inputSize0: a.InputSize0,
        inputSize1: a.InputSize1,
        coherentTableWalks,
        translationEnabled,
      }),
    { EINVAL: 'STATUS_INVALID_PARAMETER_2', EFAULT: 'STATUS_INVALID_PARAMETER_2', ERANGE: 'STATUS_INVALID_PARAMETER_2', EOVERFLOW: 'STATUS_INVALID_PARAMETER_2' },
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
  if (typeof Number_ !== 'number' || !Number.isSafeInteger(Number_) || Number_ < 0) throw invalidArg(op, 3, 'Number', `must be a non-negative integer (got ${describe(Number_)})`);
  if (!(VaList instanceof BigUint64Array) && !Array.isArray(VaList)) throw invalidArg(op, 4, 'VaList', 'must be an array of bigint addresses');
  if (VaList.length < Number_) throw invalidArg(op, 4, 'VaList', `holds ${VaList.length} entries, fewer than Number (${Number_})`);
  const list: bigint[] = [];
  for (let i = 0; i < Number_; i++) {
    const v = VaList[i];
    if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw invalidArg(op, 4, 'VaList', `entry ${i} is not a bigint address within 0..2^64-1`);
    list.push(v);
  }
  // what the kernel refuses in the list is the list's fault: parameter 4
  viaBackend(op, () => ctx.backend.flushDomain(dom.id, list, LastLevel), { EINVAL: 'STATUS_INVALID_PARAMETER_4', ERANGE: 'STATUS_INVALID_PARAMETER_4', EOVERFLOW: 'STATUS_INVALID_PARAMETER_4' });
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
    if (!existing) closeDevice(ctx, d, op);
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
