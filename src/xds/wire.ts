/**
 * The ADS wire: the Envoy v3 discovery messages (DiscoveryRequest/Response and their delta
 * forms) encoded and decoded with protobufjs over the protos shipped in @grpc/grpc-js-xds,
 * for the grpc-js bidi streams of src/xds/client.ts (and the test ADS server).
 *
 * Resources inside a response stay packed (`google.protobuf.Any`: typeUrl + bytes) here; each is
 * unpacked on its own (`decodeResource`) so that one undecodable resource is NACKed by name.
 */
import type * as protobuf from 'protobufjs';
import { decodeResource as decodeBytes, discoveryTypes, encodeJson } from './proto';
import type { XdsMessage } from './types';

/** A packed resource as it travels. */
export interface PackedAny {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

export interface SotwRequest {
  versionInfo?: string;
  node?: Record<string, unknown>;
  resourceNames?: string[];
  typeUrl: string;
  responseNonce?: string;
  errorDetail?: { code: number; message: string };
}

export interface SotwResponse {
  readonly versionInfo: string;
  readonly resources: readonly PackedAny[];
  readonly typeUrl: string;
  readonly nonce: string;
}

export interface DeltaRequest {
  node?: Record<string, unknown>;
  typeUrl: string;
  resourceNamesSubscribe?: string[];
  resourceNamesUnsubscribe?: string[];
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: { code: number; message: string };
}

export interface DeltaResource {
  readonly name: string;
  readonly version: string;
  /** Absent: the server only renewed the TTL (not used by Outrigger: treated as no change). */
  readonly resource?: PackedAny;
}

export interface DeltaResponse {
  readonly systemVersionInfo: string;
  readonly resources: readonly DeltaResource[];
  readonly typeUrl: string;
  readonly removedResources: readonly string[];
  readonly nonce: string;
}

type Which = 'DiscoveryRequest' | 'DiscoveryResponse' | 'DeltaDiscoveryRequest' | 'DeltaDiscoveryResponse';
const SOTW_REQ: Which = 'DiscoveryRequest';
const SOTW_RES: Which = 'DiscoveryResponse';
const DELTA_REQ: Which = 'DeltaDiscoveryRequest';
const DELTA_RES: Which = 'DeltaDiscoveryResponse';
const type = (w: Which): protobuf.Type => discoveryTypes()[w];

/** grpc-js method paths of the ADS service. */
export const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const ADS_DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

function encode(name: Which, obj: object): Buffer {
  const t = type(name);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

/** Packed Any as protobufjs gives it without json expansion. */
interface RawAny {
  type_url?: string;
  value?: Uint8Array;
}

function packed(a: RawAny | undefined): PackedAny | undefined {
  if (a === undefined || a === null) return undefined;
  return { typeUrl: a.type_url ?? '', value: a.value ?? new Uint8Array(0) };
}

const RAW: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, arrays: true };

export const encodeSotwRequest = (r: SotwRequest): Buffer => encode(SOTW_REQ, r);
export const encodeDeltaRequest = (r: DeltaRequest): Buffer => encode(DELTA_REQ, r);

export function decodeSotwRequest(b: Buffer): SotwRequest {
  const t = type(SOTW_REQ);
  return t.toObject(t.decode(b), { ...RAW, json: true }) as SotwRequest;
}

export function decodeDeltaRequest(b: Buffer): DeltaRequest {
  const t = type(DELTA_REQ);
  return t.toObject(t.decode(b), { ...RAW, json: true, objects: true }) as DeltaRequest;
}

export function decodeSotwResponse(b: Buffer): SotwResponse {
  const t = type(SOTW_RES);
  const o = t.toObject(t.decode(b), RAW) as { versionInfo: string; resources: RawAny[]; typeUrl: string; nonce: string };
  return { versionInfo: o.versionInfo, typeUrl: o.typeUrl, nonce: o.nonce, resources: o.resources.map((a) => packed(a)!) };
}

export function decodeDeltaResponse(b: Buffer): DeltaResponse {
  const t = type(DELTA_RES);
  const o = t.toObject(t.decode(b), RAW) as {
    systemVersionInfo: string;
    resources: { name: string; version: string; resource?: RawAny }[];
    typeUrl: string;
    removedResources: string[];
    nonce: string;
  };
  return {
    systemVersionInfo: o.systemVersionInfo,
    typeUrl: o.typeUrl,
    nonce: o.nonce,
    removedResources: o.removedResources,
    resources: o.resources.map((r) => ({ name: r.name, version: r.version, resource: packed(r.resource) })),
  };
}

export function encodeSotwResponse(r: SotwResponse): Buffer {
  return encode(SOTW_RES, { ...r, resources: r.resources.map((a) => ({ type_url: a.typeUrl, value: a.value })) });
}

export function encodeDeltaResponse(r: DeltaResponse): Buffer {
  return encode(DELTA_RES, {
    ...r,
    resources: r.resources.map((x) => ({ name: x.name, version: x.version, resource: x.resource ? { type_url: x.resource.typeUrl, value: x.resource.value } : undefined })),
  });
}

/** Unpacks one resource into the contract form; throws (with protobufjs's reason) when it does not decode. */
export function decodeResource(a: PackedAny): XdsMessage {
  return decodeBytes(a.typeUrl, a.value);
}

/** Packs a resource given as canonical proto3 JSON (what a control plane would send). */
export function encodeResource(typeUrl: string, json: unknown): PackedAny {
  return { typeUrl, value: encodeJson(typeUrl, json) };
}

/** JSON value -> google.protobuf.Struct / Value in protobufjs object form. */
export function toStructValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

export function toStruct(o: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toStructValue(v);
  return { fields };
}
