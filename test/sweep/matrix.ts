/**
 * The member × bad-value matrix, generated from one table: every V1/V2/V3 member, every Platform
 * service, DmaMemory, the DeviceRegions object, EduDevice and IoGetIommuInterface(Ex), each with
 * its parameters' kinds; each kind has its list of bad values. A row = one member called with
 * valid arguments except one parameter replaced by one bad value (plus one row per member called
 * on a closed platform). Shared by the host runner (test/sweep/bad-values.test.ts, simulator) and
 * the guest runner (test/vm/guest/sweep-native.test.ts, native backends).
 */
import { IoGetIommuInterface, IoGetIommuInterfaceEx, EduDevice, IommuError, NTSTATUS } from '../../lib/index.js';
import { V1_MEMBERS, V2_MEMBERS, V3_MEMBERS } from '../../lib/wdk/interface.js';
import { FOLLOW_UP_IOVA, MAPPED_IOVA, PAGE, RW, type World, agreement, bookkeeping, followUp } from './world.js';

const U64 = 1n << 64n;

/** A bad value: its label (part of the row id) and how to make it from the world. */
export interface Bad {
  readonly label: string;
  readonly value: (w: World) => unknown;
  /** Codes this value may answer besides STATUS_INVALID_PARAMETER*. */
  readonly alsoCodes?: readonly string[];
}

const b = (label: string, value: unknown, alsoCodes?: readonly string[]): Bad => ({ label, value: () => value, ...(alsoCodes ? { alsoCodes } : {}) });
const bw = (label: string, value: (w: World) => unknown, alsoCodes?: readonly string[]): Bad => ({ label, value, ...(alsoCodes ? { alsoCodes } : {}) });

/** Wrong JS types (every parameter gets these unless its kind accepts the type). */
const JS_TYPES: readonly Bad[] = [
  b('string', 'x'),
  b('object', {}),
  b('symbol', Symbol('bad')),
  b('function', () => 0),
  b('array', []),
];
const NUMBERS: readonly Bad[] = [b('NaN', Number.NaN), b('fraction', 1.5), b('negative', -1), b('Infinity', Number.POSITIVE_INFINITY)];
const HUGE_BIGINTS: readonly Bad[] = [b('-1n', -1n), b('2^64', U64), b('2^64-1', U64 - 1n)];
const ABSENT: readonly Bad[] = [b('null', null), b('undefined', undefined)];

/** Handle kinds: wrong types, absent, a number, the wrong class, deleted, of another platform. */
function handle(deleted: ((w: World) => unknown) | null, foreign: ((w: World) => unknown) | null, wrongClass: (w: World) => unknown): readonly Bad[] {
  return [
    ...JS_TYPES,
    ...ABSENT,
    b('number', 1),
    bw('wrong-class', wrongClass),
    ...(deleted ? [bw('deleted', deleted)] : []),
    ...(foreign ? [bw('foreign', foreign)] : []),
  ];
}

const perms: readonly Bad[] = [...JS_TYPES, ...NUMBERS, b('2^32', 2 ** 32), b('unknown-bit', 8), b('bigint', 1n), ...ABSENT];
const u32: readonly Bad[] = [...JS_TYPES, ...NUMBERS, b('2^32', 2 ** 32), b('bigint', 1n)];
const bool: readonly Bad[] = [...JS_TYPES, b('number', 1), b('NaN', Number.NaN)];
const address: readonly Bad[] = [
  ...JS_TYPES,
  ...NUMBERS,
  ...HUGE_BIGINTS,
  b('unaligned', MAPPED_IOVA + 1n),
  b('msi-window', 0xfee00000n),
  b('beyond-aperture', 1n << 50n),
  b('wrap', U64 - PAGE),
];
/** Optional explicit address / bounds: null means "absent", so not bad. */
const optAddress: readonly Bad[] = address.filter((x) => x.label !== 'undefined' && x.label !== 'null');
const bound: readonly Bad[] = [...JS_TYPES, ...NUMBERS, b('-1n', -1n), b('2^64', U64)];
const pages: readonly Bad[] = [...JS_TYPES, ...NUMBERS, ...HUGE_BIGINTS, b('zero', 0), b('zero-n', 0n), ...ABSENT];
const tokenSize: readonly Bad[] = [
  ...JS_TYPES,
  ...NUMBERS,
  ...HUGE_BIGINTS.map((x) => ({ ...x, alsoCodes: ['STATUS_INSUFFICIENT_RESOURCES'] })),
  b('zero', 0n),
  b('unaligned', PAGE + 1n),
  ...ABSENT,
];
const segOffset: readonly Bad[] = [
  ...JS_TYPES,
  ...NUMBERS,
  ...HUGE_BIGINTS,
  b('unaligned', 1n),
  b('beyond-token', 0x10000n),
  ...ABSENT,
];

function mdlOf(w: World, over: Record<string, unknown>): unknown {
  return { ...w.mem.mdl(2n * PAGE, PAGE), ...over };
}

/** IOMMU_MAP_PHYSICAL_ADDRESS descriptions that are wrong. */
const physDesc: readonly Bad[] = [
  ...JS_TYPES,
  ...ABSENT,
  b('no-MapType', { Mdl: null }),
  b('MapType-9', { MapType: 9 }),
  b('MapType-NaN', { MapType: Number.NaN }),
  bw('mdl-bytecount-0', (w) => ({ MapType: 0, Mdl: mdlOf(w, { ByteCount: 0 }) })),
  bw('mdl-bytecount-unaligned', (w) => ({ MapType: 0, Mdl: mdlOf(w, { ByteCount: 100 }) })),
  bw('mdl-pfn-negative', (w) => ({ MapType: 0, Mdl: mdlOf(w, { PfnArray: [-1n] }) })),
  bw('mdl-pfn-2^64', (w) => ({ MapType: 0, Mdl: mdlOf(w, { PfnArray: [U64] }) })),
  bw('mdl-pfn-string', (w) => ({ MapType: 0, Mdl: mdlOf(w, { PfnArray: ['x'] }) })),
  b('pfn-count-fraction', { MapType: 2, PfnArray: { PageFrame: [1n], NumberOfPages: 1.5 } }),
  b('pfn-count-NaN', { MapType: 2, PfnArray: { PageFrame: [1n], NumberOfPages: Number.NaN } }),
  b('pfn-count-beyond-list', { MapType: 2, PfnArray: { PageFrame: [1n], NumberOfPages: 2 } }),
  b('contig-unaligned', { MapType: 1, ContiguousRange: { Base: 0x1001n, Size: PAGE } }),
  b('contig-size-0', { MapType: 1, ContiguousRange: { Base: 0x1000n, Size: 0n } }),
  b('contig-wrap', { MapType: 1, ContiguousRange: { Base: U64 - PAGE, Size: 2n * PAGE } }),
  b('contig-2^64', { MapType: 1, ContiguousRange: { Base: U64, Size: PAGE } }),
  b('contig-NaN', { MapType: 1, ContiguousRange: { Base: Number.NaN, Size: PAGE } }),
  bw('freed-memory', (w) => w.deleted.memDesc),
  bw('never-handed-out', () => ({ MapType: 1, ContiguousRange: { Base: 16n << 30n, Size: PAGE } })),
];

/** A raw V1 MDL that is wrong. */
const rawMdl: readonly Bad[] = [
  ...JS_TYPES,
  ...ABSENT,
  bw('bytecount-0', (w) => mdlOf(w, { ByteCount: 0 })),
  bw('bytecount-NaN', (w) => mdlOf(w, { ByteCount: Number.NaN })),
  bw('pfn-negative', (w) => mdlOf(w, { PfnArray: [-1n] })),
  bw('pfn-missing', (w) => mdlOf(w, { PfnArray: undefined })),
  bw('not-an-mdl', (w) => w.mem.asContiguousRange(2n * PAGE, PAGE)),
  bw('never-handed-out', () => ({ ByteCount: 4096, ByteOffset: 0, PfnArray: [(16n << 30n) >> 12n] })),
];

const domainType: readonly Bad[] = [...JS_TYPES, ...NUMBERS, b('99', 99), b('2^32', 2 ** 32), b('bigint', 0n), ...ABSENT];
const flags: readonly Bad[] = [
  b('string', 'x'),
  b('symbol', Symbol('bad')),
  b('function', () => 0),
  b('array', []),
  b('object-without-AsUlonglong', {}),
  ...NUMBERS,
  b('-1n', -1n),
  b('2^64', U64),
  b('AsUlonglong-NaN', { AsUlonglong: Number.NaN }),
];
/** What every configuration-object argument refuses first: values that are not objects at all. */
const NOT_OBJECTS: readonly Bad[] = [b('string', 'x'), b('symbol', Symbol('bad')), b('function', () => 0), b('number', 1)];
const allocatorConfig: readonly Bad[] = [
  ...NOT_OBJECTS,
  b('type-99', { LogicalAllocatorType: 99 }),
  b('type-NaN', { LogicalAllocatorType: Number.NaN }),
  b('type-string', { LogicalAllocatorType: 'buddy' }),
  b('buddy-width-0', { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 0 } }),
  b('buddy-width-NaN', { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: Number.NaN } }),
  b('buddy-width-99', { LogicalAllocatorType: 1, BuddyAllocatorConfig: { AddressWidth: 99 } }),
  b('buddy-no-config', { LogicalAllocatorType: 1 }),
];
const reservedRegions: readonly Bad[] = [
  ...NOT_OBJECTS,
  b('base-negative', [{ Base: -PAGE, NumberOfPages: 1, ShouldMap: false }]),
  b('base-unaligned', [{ Base: 0x1001n, NumberOfPages: 1, ShouldMap: false }]),
  b('base-2^64', [{ Base: U64, NumberOfPages: 1, ShouldMap: false }]),
  b('base-NaN', [{ Base: Number.NaN, NumberOfPages: 1, ShouldMap: false }]),
  b('pages-0', [{ Base: 0x10000n, NumberOfPages: 0, ShouldMap: false }]),
  b('pages-NaN', [{ Base: 0x10000n, NumberOfPages: Number.NaN, ShouldMap: false }]),
  b('pages-fraction', [{ Base: 0x10000n, NumberOfPages: 1.5, ShouldMap: false }]),
  b('wrap', [{ Base: U64 - PAGE, NumberOfPages: 2, ShouldMap: false }]),
  b('ShouldMap-string', [{ Base: 0x10000n, NumberOfPages: 1, ShouldMap: 'yes' }]),
  b('element-string', ['x']),
];
const deviceConfig: readonly Bad[] = [
  ...NOT_OBJECTS,
  b('type-99', { ConfigType: 99 }),
  b('type-NaN', { ConfigType: Number.NaN }),
  b('type-fraction', { ConfigType: 1.5 }),
  b('pasid-config-99', { ConfigType: 3, Pasid: { ConfigType: 99 } }),
  b('element-string', ['x']),
];
const callback: readonly Bad[] = [b('string', 'x'), b('object', {}), b('symbol', Symbol('bad')), b('array', []), b('number', 1), ...ABSENT];
const stateFields: readonly Bad[] = [
  ...JS_TYPES.filter((x) => x.label !== 'object'),
  ...ABSENT,
  b('AvailableDomainTypes-fraction', { AvailableDomainTypes: 1.5 }),
  b('AvailableDomainTypes-string', { AvailableDomainTypes: 'x' }),
  b('AsULONG-2^33', { AsULONG: 2 ** 33 }),
  b('AsULONG-negative', { AsULONG: -1 }),
  b('AsULONG-NaN', { AsULONG: Number.NaN }),
  b('AsULONG-fraction', { AsULONG: 1.5 }),
];
const faultConfig: readonly Bad[] = [
  b('string', 'x'),
  b('symbol', Symbol('bad')),
  b('number', 1),
  b('array', []),
  b('no-handler', {}),
  b('handler-string', { FaultHandler: 'x' }),
];
const domainConfig: readonly Bad[] = [...JS_TYPES, ...ABSENT, b('type-99', { Type: 99 }), b('type-NaN', { Type: Number.NaN })];
const vaList: readonly Bad[] = [
  b('string', 'x'),
  b('object', {}),
  b('symbol', Symbol('bad')),
  b('number', 1),
  ...ABSENT,
  b('element-NaN', [Number.NaN]),
  b('element-string', ['x']),
  b('element--1n', [-1n]),
  b('element-2^64', [U64]),
];

export type Kind = readonly Bad[] | 'any';

export interface Param {
  readonly name: string;
  readonly kind: Kind;
  readonly valid: (w: World) => unknown;
}

export interface Member {
  /** 'V3.CreateDomainEx', 'Platform.allocateDmaMemory', 'DmaMemory.asMdl', ... */
  readonly id: string;
  /** WDK members: bad arguments answer STATUS_INVALID_PARAMETER* (or alwaysCodes). */
  readonly wdk: boolean;
  /** Codes this member answers whatever its arguments in the default x86 world (e.g. Arm64-only members). */
  readonly alwaysCodes?: readonly string[];
  readonly params: readonly Param[];
  /** Call it (sync or async) with the given arguments. */
  readonly call: (w: World, args: unknown[]) => unknown;
  /** The valid arguments need something this world lacks (e.g. a PASID device on a native backend). */
  readonly needs?: (w: World) => boolean;
  /** Skip the closed-platform row (the member is not bound to a platform, or closed is not an error). */
  readonly noClosedRow?: boolean;
}

const P = (name: string, kind: Kind, valid: (w: World) => unknown): Param => ({ name, kind, valid });

// valid-argument makers
const dom = (w: World) => w.dom;
const dom2 = (w: World) => w.dom2;
const idDom = (w: World) => w.idDom;
const dev = (w: World) => w.dev;
const pdo = (w: World) => w.pdo;

const domainH = handle((w) => w.deleted.dom, (w) => w.foreign.dom, (w) => w.dev);
const deviceH = handle((w) => w.deleted.dev, (w) => w.foreign.dev, (w) => w.dom);
const pdoH = [...handle(null, (w) => w.foreign.pdo, (w) => w.dev), b('bdf-string', '0000:00:03.0')];
const tokenH = handle((w) => w.deleted.token, (w) => w.foreign.token, (w) => w.dom);
const segmentH: readonly Bad[] = [
  ...handle(null, (w) => w.foreign.segment, (w) => w.token),
  bw('forged-copy', (w) => ({ ...w.segment })),
  bw('forged-offset', (w) => ({ OwningToken: w.token, Offset: 0n, Size: PAGE * 2n })),
];
const pasidH = handle(null, null, (w) => w.dev);

/** A WDK member called through the V3 (or V1) table. */
function wdk(table: 'V1' | 'V3', name: string, params: readonly Param[], extra: Partial<Member> = {}): Member {
  return {
    id: `${table}.${name}`,
    wdk: true,
    params,
    call: (w, args) => (w[table] as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args),
    ...extra,
  };
}

const mdl1 = (w: World) => w.mem.asMdl(2n * PAGE, PAGE);
const rawMdl1 = (w: World) => w.mem.mdl(2n * PAGE, PAGE);
const X64_ONLY_NOT_SUPPORTED = ['STATUS_NOT_SUPPORTED'];

/** The parameters SetDeviceFaultReporting (V1) and SetDeviceFaultReportingEx (V3) share after their first. */
const FAULT_REPORTING_TAIL = [
  P('InputMappingIdBase', u32, () => 0),
  P('Enable', bool, () => true),
  P('FaultConfig', faultConfig, () => ({ FaultHandler: () => undefined, FaultContext: null })),
];

/**
 * THE TABLE. One entry per member; `members` of V1/V2/V3 are checked against lib/wdk/interface.ts
 * by the runner, so a new member without rows fails the sweep.
 */
export const MEMBERS: readonly Member[] = [
  // ---- V2/V3 --------------------------------------------------------------------------------
  wdk('V3', 'CreateDomainEx', [
    P('DomainType', domainType, () => 0),
    P('Flags', flags, () => 0n),
    P('LogicalAllocatorConfig', allocatorConfig, () => null),
    P('ReservedRegions', reservedRegions, () => null),
  ]),
  wdk('V3', 'DeleteDomain', [P('Domain', domainH, dom2)]),
  wdk('V3', 'AttachDeviceEx', [P('Domain', domainH, dom2), P('DmaDevice', deviceH, dev)], { alwaysCodes: ['STATUS_INVALID_PARAMETER'] }),
  wdk('V3', 'DetachDeviceEx', [P('DmaDevice', deviceH, dev)]),
  wdk('V3', 'FlushDomain', [P('Domain', domainH, dom)]),
  wdk('V3', 'FlushDomainByVaList', [P('Domain', domainH, dom), P('LastLevel', bool, () => true), P('Number', u32, () => 1), P('VaList', vaList, () => [MAPPED_IOVA])]),
  wdk('V3', 'QueryInputMappings', [P('PhysicalDeviceObject', pdoH, pdo), P('BufferLength', u32, () => 16)], { alwaysCodes: X64_ONLY_NOT_SUPPORTED }),
  wdk('V3', 'MapLogicalRangeEx', [
    P('Domain', domainH, dom),
    P('Permissions', perms, () => RW),
    P('PhysicalAddressToMap', physDesc, mdl1),
    P('ExplicitLogicalAddress', optAddress, () => FOLLOW_UP_IOVA),
    P('MinLogicalAddress', bound, () => null),
    P('MaxLogicalAddress', bound, () => null),
  ]),
  wdk('V3', 'UnmapLogicalRange', [P('Domain', domainH, dom), P('LogicalAddress', address, () => MAPPED_IOVA), P('NumberOfPages', pages, () => 1n)]),
  wdk('V3', 'MapIdentityRangeEx', [P('Domain', domainH, idDom), P('Permissions', perms, () => RW), P('PhysicalAddressToMap', physDesc, mdl1)]),
  wdk('V3', 'UnmapIdentityRangeEx', [P('Domain', domainH, idDom), P('MappedPhysicalAddress', physDesc, mdl1)], { alwaysCodes: ['STATUS_INVALID_PARAMETER'] }),
  wdk('V3', 'SetDeviceFaultReportingEx', [
    P('DmaDevice', deviceH, dev),
    ...FAULT_REPORTING_TAIL,
  ]),
  wdk('V3', 'ConfigureDomain', [P('Domain', domainH, dom), P('Configuration', domainConfig, () => ({ Type: 1, X64: { FirstLevelPageTableRoot: 0n, TranslationEnabled: false } }))]),
  wdk('V3', 'QueryAvailableDomainTypes', [P('DmaDevice', deviceH, dev)]),
  wdk('V3', 'RegisterInterfaceStateChangeCallback', [
    P('StateChangeCallback', callback, () => () => undefined),
    P('Context', 'any', () => null),
    P('DmaDevice', deviceH, dev),
    P('StateFields', stateFields, () => ({ AvailableDomainTypes: 1 })),
  ]),
  wdk('V3', 'UnregisterInterfaceStateChangeCallback', [P('StateChangeCallback', callback, () => () => undefined), P('DmaDevice', deviceH, dev)], {
    alwaysCodes: ['STATUS_UNSUCCESSFUL'],
  }),
  wdk('V3', 'ReserveLogicalAddressRange', [
    P('Domain', domainH, dom),
    P('Size', tokenSize, () => PAGE),
    P('ExplicitLogicalAddress', optAddress, () => FOLLOW_UP_IOVA),
    P('MinLogicalAddress', bound, () => null),
    P('MaxLogicalAddress', bound, () => null),
  ]),
  wdk('V3', 'FreeReservedLogicalAddressRange', [P('LogicalAddressToken', tokenH, (w) => w.token)], { alwaysCodes: ['STATUS_RESOURCE_IN_USE'] }),
  wdk('V3', 'MapReservedLogicalRange', [
    P('LogicalAddressToken', tokenH, (w) => w.token),
    P('Offset', segOffset, () => 2n * PAGE),
    P('Permissions', perms, () => RW),
    P('PhysicalAddressToMap', physDesc, mdl1),
  ]),
  wdk('V3', 'UnmapReservedLogicalRange', [P('MappedSegment', segmentH, (w) => w.segment)]),
  wdk('V3', 'CreateDevice', [P('DeviceObject', pdoH, pdo), P('DeviceConfig', deviceConfig, () => null)], { alwaysCodes: ['STATUS_DEVICE_BUSY'] }),
  wdk('V3', 'DeleteDevice', [P('DmaDevice', deviceH, dev)], { alwaysCodes: ['STATUS_RESOURCE_IN_USE'] }),
  wdk('V3', 'CreatePasidDevice', [P('DmaDevice', deviceH, dev)], { alwaysCodes: ['STATUS_INVALID_PARAMETER_1'] }),
  wdk('V3', 'DeletePasidDevice', [P('PasidDevice', pasidH, (w) => w.pasid)], { needs: (w) => w.pasid !== undefined }),
  wdk('V3', 'AttachPasidDevice', [P('Domain', domainH, dom), P('PasidDevice', pasidH, (w) => w.pasid)], { needs: (w) => w.pasid !== undefined }),
  wdk('V3', 'DetachPasidDevice', [P('PasidDevice', pasidH, (w) => w.pasid)], { needs: (w) => w.pasid !== undefined, alwaysCodes: ['STATUS_INVALID_PARAMETER'] }),
  wdk('V3', 'QueryDeviceInfo', [P('DmaDevice', deviceH, dev), P('Size', [...u32, b('zero', 0, ['STATUS_BUFFER_TOO_SMALL'])].filter((x) => x.label !== '2^32'), () => 3)]),
  // ---- V1-only ------------------------------------------------------------------------------
  wdk('V1', 'CreateDomain', [P('OsManagedPageTable', bool, () => true)]),
  wdk('V1', 'AttachDevice', [P('Domain', domainH, dom2), P('PhysicalDeviceObject', pdoH, pdo), P('InputMappingIdBase', u32, () => 0), P('MappingCount', u32, () => 1)], {
    alwaysCodes: ['STATUS_INVALID_PARAMETER'],
  }),
  wdk('V1', 'DetachDevice', [P('Domain', domainH, dom), P('PhysicalDeviceObject', pdoH, pdo), P('InputMappingId', u32, () => 0)]),
  wdk('V1', 'MapLogicalRange', [P('Domain', domainH, dom), P('Permissions', perms, () => RW), P('Mdl', rawMdl, rawMdl1), P('LogicalAddress', address.filter((x) => x.label !== 'undefined'), () => FOLLOW_UP_IOVA)]),
  wdk('V1', 'MapIdentityRange', [P('Domain', domainH, idDom), P('Permissions', perms, () => RW), P('Mdl', rawMdl, rawMdl1)]),
  wdk('V1', 'UnmapIdentityRange', [P('Domain', domainH, idDom), P('Mdl', rawMdl, rawMdl1)], { alwaysCodes: ['STATUS_INVALID_PARAMETER'] }),
  wdk('V1', 'SetDeviceFaultReporting', [
    P('PhysicalDeviceObject', pdoH, pdo),
    ...FAULT_REPORTING_TAIL,
  ]),
  // ---- Platform services --------------------------------------------------------------------
  {
    id: 'Platform.findDevice',
    wdk: false,
    params: [P('bdf', [b('number', 42), b('object', {}), b('symbol', Symbol('bad')), b('function', () => 0), b('array', []), ...ABSENT], () => '0000:00:03.0')],
    call: (w, a) => w.p.findDevice(a[0] as string),
  },
  {
    id: 'Platform.allocateDmaMemory',
    wdk: false,
    params: [
      P('size', [...JS_TYPES, ...NUMBERS, b('-1n', -1n), b('2^64', U64, ['STATUS_INSUFFICIENT_RESOURCES']), b('2^64-1', U64 - 1n, ['STATUS_INSUFFICIENT_RESOURCES']), b('zero', 0), ...ABSENT], () => PAGE),
      P('options', [b('string', 'x'), b('number', 42), b('symbol', Symbol('bad')), b('hugePages-string', { hugePages: 'x' }), b('lazy-NaN', { lazy: Number.NaN })], () => ({})),
    ],
    call: (w, a) => w.p.allocateDmaMemory(a[0] as bigint, a[1] as never),
  },
  {
    id: 'Platform.deviceRegions',
    wdk: false,
    params: [P('device', deviceH, dev)],
    call: (w, a) => w.p.deviceRegions(a[0] as never),
  },
  {
    id: 'Platform.geometry',
    wdk: false,
    params: [P('domain', domainH, dom)],
    call: (w, a) => w.p.geometry(a[0] as never),
  },
  {
    id: 'Platform.waitForFault',
    wdk: false,
    noClosedRow: true,
    params: [
      P('filter', [b('string', 'x'), b('number', 42), b('symbol', Symbol('bad')), b('bdf-number', { bdf: 42 }), b('iova-string', { iova: 'x' }), b('iova--1n', { iova: -1n })], () => ({ bdf: '0000:00:03.0' })),
      P('timeoutMs', [...JS_TYPES, b('NaN', Number.NaN), b('negative', -1), b('fraction', 1.5), b('2^31', 2 ** 31), b('Infinity', Number.POSITIVE_INFINITY), b('null', null)], () => 1),
    ],
    call: (w, a) => w.p.waitForFault(a[0] as never, a[1] as number),
  },
  // ---- DmaMemory ----------------------------------------------------------------------------
  ...(['mdl', 'asMdl', 'asPfnArray', 'asContiguousRange'] as const).map(
    (m): Member => ({
      id: `DmaMemory.${m}`,
      wdk: false,
      params: [
        P('this', [bw('freed', (w) => w.deleted.mem), bw('foreign-platform-closed', (w) => (w.foreign.p.close(), w.foreign.mem))], (w) => w.mem),
        P('offset', [...JS_TYPES, ...NUMBERS, ...HUGE_BIGINTS, b('unaligned', 1n), b('beyond-size', 8n * PAGE)], () => 0n),
        P('length', [...JS_TYPES, ...NUMBERS, ...HUGE_BIGINTS, b('zero', 0n), b('beyond-size', 8n * PAGE)], () => PAGE),
      ],
      call: (_w, a) => (a[0] as Record<string, (...x: unknown[]) => unknown>)[m](a[1], a[2]),
    }),
  ),
  {
    id: 'DmaMemory.read',
    wdk: false,
    params: [
      P('this', [bw('freed', (w) => w.deleted.mem)], (w) => w.mem),
      P('offset', [...JS_TYPES, ...NUMBERS, ...HUGE_BIGINTS, b('beyond-size', 8n * PAGE)], () => 0n),
      P('length', [...JS_TYPES, ...NUMBERS, b('beyond-size', 8 * 4096), b('bigint', 16n)], () => 16),
    ],
    call: (_w, a) => (a[0] as { read: (o: unknown, l: unknown) => unknown }).read(a[1], a[2]),
  },
  {
    id: 'DmaMemory.write',
    wdk: false,
    params: [
      P('this', [bw('freed', (w) => w.deleted.mem)], (w) => w.mem),
      P('offset', [...JS_TYPES, ...NUMBERS, ...HUGE_BIGINTS, b('beyond-size', 8n * PAGE)], () => 0n),
      P('data', [...JS_TYPES, b('number', 1), ...ABSENT, b('too-long', new Uint8Array(8 * 4096))], () => new Uint8Array(16)),
    ],
    call: (_w, a) => (a[0] as { write: (o: unknown, d: unknown) => unknown }).write(a[1], a[2]),
  },
  {
    id: 'DmaMemory.physicalAddress',
    wdk: false,
    params: [P('this', [bw('freed', (w) => w.deleted.mem)], (w) => w.mem)],
    call: (_w, a) => (a[0] as { physicalAddress: bigint }).physicalAddress,
  },
  {
    id: 'DmaMemory.bytes',
    wdk: false,
    params: [P('this', [bw('freed', (w) => w.deleted.mem)], (w) => w.mem)],
    call: (_w, a) => (a[0] as { bytes: Uint8Array }).bytes,
  },
  // ---- the DeviceRegions object (the receiver: the device's regions, also after the device was deleted) ----
  ...(
    [
      ['configRead', [P('offset', [...JS_TYPES, ...NUMBERS, b('beyond-config', 4096), b('bigint', 0n)], () => 0), P('size', [...JS_TYPES, b('3', 3), b('8', 8), b('NaN', Number.NaN)], () => 2)]],
      ['barRead32', [P('bar', [...JS_TYPES, ...NUMBERS, b('7', 7)], () => 0), P('offset', [...JS_TYPES, ...NUMBERS, b('beyond-bar', 1 << 24), b('unaligned', 2)], () => 0)]],
      [
        'barWrite64',
        [
          P('bar', [...JS_TYPES, ...NUMBERS, b('7', 7)], () => 0),
          P('offset', [...JS_TYPES, ...NUMBERS, b('beyond-bar', 1 << 24)], () => 0x80),
          P('value', [...JS_TYPES, ...NUMBERS.filter((x) => x.label !== 'negative'), b('-1n', -1n), b('2^64', U64)], () => 0n),
        ],
      ],
    ] as const
  ).map(
    ([m, args]): Member => ({
      id: `DeviceRegions.${m}`,
      wdk: false,
      params: [P('this', [bw('device-deleted', (w) => (w.V3.DetachDeviceEx(w.dev), w.V3.DeleteDevice(w.dev), w.regions))], (w) => w.regions), ...args],
      call: (_w, a) => (a[0] as Record<string, (...x: unknown[]) => unknown>)[m](...a.slice(1)),
    }),
  ),
  // ---- EduDevice ----------------------------------------------------------------------------
  {
    id: 'EduDevice.constructor',
    wdk: false,
    noClosedRow: true,
    params: [
      P('regions', [...JS_TYPES, ...ABSENT, b('number', 1)], (w) => w.regions),
      P('options', [b('string', 'x'), b('timeoutMs-NaN', { timeoutMs: Number.NaN }), b('timeoutMs-2^31', { timeoutMs: 2 ** 31 }), b('dmaMask-number', { dmaMask: 5 }), b('dmaMask-0n', { dmaMask: 0n })], () => ({})),
    ],
    call: (_w, a) => new EduDevice(a[0] as never, a[1] as never),
  },
  {
    id: 'EduDevice.factorial',
    wdk: false,
    params: [P('n', [...JS_TYPES, ...NUMBERS, b('2^32', 2 ** 32), b('bigint', 5n), ...ABSENT], () => 5)],
    call: (w, a) => w.edu.factorial(a[0] as number),
  },
  ...(['dmaToDevice', 'dmaFromDevice'] as const).map(
    (m): Member => ({
      id: `EduDevice.${m}`,
      wdk: false,
      params: [
        P('iova', [...JS_TYPES, ...NUMBERS, b('-1n', -1n), b('2^64', U64), b('beyond-dma-mask', 1n << 28n), ...ABSENT], () => MAPPED_IOVA),
        P('length', [...JS_TYPES, ...NUMBERS, b('zero', 0), b('4096', 4096), b('bigint', 16n)], () => 16),
        P('deviceOffset', [...JS_TYPES, ...NUMBERS, b('4095', 4095), b('bigint', 0n), b('null', null)], () => 0),
      ],
      call: (w, a) => w.edu[m](a[0] as bigint, a[1] as number, a[2] as number),
    }),
  ),
  // ---- IoGetIommuInterface(Ex) --------------------------------------------------------------
  {
    id: 'IoGetIommuInterfaceEx',
    wdk: true,
    noClosedRow: true,
    alwaysCodes: ['STATUS_NOT_SUPPORTED'],
    params: [
      P('Version', [...JS_TYPES, ...NUMBERS, b('0', 0, ['STATUS_NOT_SUPPORTED']), b('4', 4, ['STATUS_NOT_SUPPORTED']), b('bigint', 3n), ...ABSENT], () => 3),
      P('Flags', [b('string', 'x'), b('object', {}), b('symbol', Symbol('bad')), b('function', () => 0), b('array', []), ...NUMBERS, b('1n', 1n), b('-1n', -1n), b('2^64', U64), b('null', null)], () => 0n),
      P(
        'options',
        [
          b('string', 'x'),
          b('number', 42),
          b('symbol', Symbol('bad')),
          b('array', []),
          b('backend-nonsense', { backend: 'nonsense' }),
          b('backend-object', { backend: {} }),
          b('backend-number', { backend: 42 }),
          b('backend-symbol', { backend: Symbol('bad') }),
          b('platform-object', { platform: {} }),
          b('platform-number', { platform: 42 }),
          bw('platform-and-backend', (w) => ({ platform: w.p, backend: 'sim' })),
          b('simulator-string', { backend: 'sim', simulator: 'x' }),
          b('simulator-arch', { backend: 'sim', simulator: { arch: 'mips' } }),
          b('simulator-width', { backend: 'sim', simulator: { addressWidth: 1.5 } }),
          b('onHandlerError-string', { backend: 'sim', onHandlerError: 'x' }),
        ],
        (w) => ({ platform: w.p }),
      ),
    ],
    call: (_w, a) => IoGetIommuInterfaceEx(a[0] as number, a[1] as bigint, a[2] as never),
  },
  {
    id: 'IoGetIommuInterface',
    wdk: true,
    noClosedRow: true,
    alwaysCodes: ['STATUS_NOT_SUPPORTED'],
    params: [
      P('Version', [...JS_TYPES, ...NUMBERS, b('2', 2), b('bigint', 1n), ...ABSENT], () => 1),
      P('options', [b('string', 'x'), b('number', 42), b('backend-nonsense', { backend: 'nonsense' }), b('platform-object', { platform: {} })], (w) => ({ platform: w.p })),
    ],
    call: (_w, a) => IoGetIommuInterface(a[0] as number, a[1] as never),
  },
];

/** V1/V2/V3 members of lib/wdk/interface.ts that have no row in MEMBERS (must be empty). */
export function membersWithoutRows(): string[] {
  const covered = new Set(MEMBERS.map((m) => m.id.replace(/^V[13]\./, '')));
  return [...new Set([...V1_MEMBERS, ...V2_MEMBERS, ...V3_MEMBERS])].filter((n) => !covered.has(n));
}

export interface Row {
  readonly id: string;
  readonly member: Member;
  /** The parameter replaced, or -1 for the closed-platform row. */
  readonly param: number;
  readonly bad: Bad | null;
}

export function rows(): Row[] {
  const out: Row[] = [];
  for (const m of MEMBERS) {
    m.params.forEach((p, i) => {
      if (p.kind === 'any') return;
      for (const bad of p.kind) out.push({ id: `${m.id}/${p.name}=${bad.label}`, member: m, param: i, bad });
    });
    if (!m.noClosedRow) out.push({ id: `${m.id}/<closed platform>`, member: m, param: -1, bad: null });
  }
  return out;
}

export interface Outcome {
  /** null when the row behaved: threw an IommuError with an acceptable code, state intact, follow-up OK. */
  readonly problem: string | null;
  readonly code?: string;
}

const STATUS_NAMES = new Set(Object.keys(NTSTATUS));

function describeThrown(e: unknown): string {
  if (e instanceof IommuError) return `${e.code} (${e.message})`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `a thrown ${typeof e}`;
}

/** Run one row in a fresh world; never throws. */
export async function runRow(row: Row, openWorld: () => World): Promise<Outcome> {
  let w: World;
  try {
    w = openWorld();
  } catch (e) {
    return { problem: `the world could not be built: ${describeThrown(e)}` };
  }
  try {
    const m = row.member;
    if (m.needs && !m.needs(w)) return { problem: null, code: 'n/a' };
    const args = m.params.map((p, i) => (i === row.param ? row.bad!.value(w) : p.valid(w)));
    if (row.param === -1) {
      w.p.close();
    }
    const before = row.param === -1 ? null : bookkeeping(w.p);
    let thrown: unknown = undefined;
    let threw = false;
    try {
      const r = m.call(w, args);
      if (r instanceof Promise) await r;
    } catch (e) {
      threw = true;
      thrown = e;
    }
    if (!threw) return { problem: 'accepted (no error)' };
    if (!(thrown instanceof IommuError)) return { problem: `threw ${describeThrown(thrown)}, not an IommuError` };
    const code = thrown.code;
    if (!STATUS_NAMES.has(code)) return { problem: `code ${String(code)} is not a STATUS_* name`, code };
    if (row.param === -1) {
      if (code !== 'STATUS_INVALID_DEVICE_REQUEST') return { problem: `on a closed platform answered ${code}, expected STATUS_INVALID_DEVICE_REQUEST`, code };
      return { problem: null, code };
    }
    const acceptable = (c: string): boolean => c.startsWith('STATUS_INVALID_PARAMETER') || (m.alwaysCodes ?? []).includes(c) || (row.bad!.alsoCodes ?? []).includes(c);
    if (m.wdk && !acceptable(code)) return { problem: `answered ${code}, expected STATUS_INVALID_PARAMETER*${m.alwaysCodes ? ` or ${m.alwaysCodes.join('/')}` : ''}`, code };
    // every argument error names its argument (MIX is about a combination, so it may not)
    if (code.startsWith('STATUS_INVALID_PARAMETER') && code !== 'STATUS_INVALID_PARAMETER_MIX' && !thrown.argument) return { problem: `${code} without .argument`, code };
    if (!w.p.closed) {
      const after = bookkeeping(w.p);
      if (JSON.stringify(after) !== JSON.stringify(before)) return { problem: 'the failed call changed the platform bookkeeping', code };
      const disagree = agreement(w.p);
      if (disagree.length) return { problem: `platform and backend disagree after the failed call: ${disagree.join('; ')}`, code };
      if (!row.id.includes('<') && !row.id.includes('device-deleted')) {
        try {
          followUp(w);
        } catch (e) {
          return { problem: `the valid follow-up failed: ${describeThrown(e)}`, code };
        }
      }
    }
    return { problem: null, code };
  } catch (e) {
    return { problem: `the sweep itself failed: ${describeThrown(e)}` };
  } finally {
    try {
      w.close();
    } catch (e) {
      // close must succeed after any failed call
      // eslint-disable-next-line no-unsafe-finally
      return { problem: `close() after the row failed: ${describeThrown(e)}` };
    }
  }
}
