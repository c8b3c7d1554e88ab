/**
 * Envoy v3 protos for xDS (issue #12): a protobufjs Root over the .proto files shipped in
 * @grpc/grpc-js-xds, loaded on first use only (a sidecar without xDS never pays for it: the
 * Root holds a few MB of reflection objects).
 *
 *   decodeResource(typeUrl, bytes)  wire bytes -> XdsMessage (the shape src/xds/types.ts defines)
 *   fromJson(typeUrl, json)         canonical proto3 JSON (fixtures) -> the same XdsMessage shape
 *   packAny(typeUrl, json)          canonical proto3 JSON -> { type_url, value } (test ADS server)
 *   discoveryTypes()                the (Delta)DiscoveryRequest/Response types for the ADS client
 *
 * `google.protobuf.Any` is expanded recursively to `{ '@type': url, ...fields }` when the type is
 * known to the Root; an Any of an unknown type (Istio's own filter configs such as
 * `stats.PluginConfig`) becomes `{ '@type': url, value: base64 }` so that the translator can still
 * name it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { TYPE_URL, type XdsMessage } from './types';

/** The proto files loaded into the Root (their imports follow). */
const PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/network/dubbo_proxy/v3/dubbo_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/grpc_stats/v3/config.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
];

let root: protobuf.Root | undefined;

function depsDir(): string {
  const pkg = require.resolve('@grpc/grpc-js-xds/package.json');
  return path.join(path.dirname(pkg), 'deps');
}

/** The Root, loaded on the first call (synchronously: ~0.5 s once, at xDS start). */
export function protoRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const deps = depsDir();
  const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
  // google/protobuf/descriptor.proto (imported by the validate and annotation protos) ships with protobufjs.
  includeDirs.push(path.dirname(require.resolve('protobufjs/package.json')));
  const r = new protobuf.Root();
  r.resolvePath = (origin: string, target: string): string | null => {
    if (path.isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const p = path.join(dir, target);
      if (fs.existsSync(p)) return p;
    }
    // google/protobuf/*.proto are bundled with protobufjs (it matches them by name).
    return target;
  };
  r.loadSync(PROTO_FILES as string[], { keepCase: false });
  r.resolveAll();
  root = r;
  return r;
}

/** True once the Root has been loaded (tests check that nothing loads it without xDS). */
export function protoLoaded(): boolean {
  return root !== undefined;
}

function typeName(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** The message type of a type URL, or undefined when the Root does not know it. */
export function lookupType(typeUrl: string): protobuf.Type | undefined {
  const name = typeName(typeUrl);
  if (name === '') return undefined;
  try {
    const t = protoRoot().lookup(name);
    return t instanceof protobuf.Type ? t : undefined;
  } catch {
    return undefined;
  }
}

function mustType(typeUrl: string): protobuf.Type {
  const t = lookupType(typeUrl);
  if (t === undefined) throw new Error(`unknown xDS type ${JSON.stringify(typeUrl)}`);
  return t;
}

// ---- wire -> XdsMessage ----------------------------------------------------------------
// protobufjs's own toObject() cannot expand Any with camelCase field names, so the conversion is
// done here over the reflection: the options of the contract (longs, enums and bytes as strings,
// no defaults) with every Any expanded in place.

function scalarToObject(field: protobuf.Field, v: unknown): unknown {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Enum) {
    const n = rt.valuesById[v as number];
    return n === undefined ? v : n;
  }
  switch (field.type) {
    case 'bytes': return Buffer.from(v as Uint8Array).toString('base64');
    case 'int64': case 'uint64': case 'sint64': case 'fixed64': case 'sfixed64':
      return String(v);
    case 'double': case 'float':
      return Number.isFinite(v as number) ? v : String(v);
    default: return v;
  }
}

function fieldToObject(field: protobuf.Field, v: unknown): unknown {
  const rt = field.resolvedType;
  return rt instanceof protobuf.Type ? messageToObject(rt, v as protobuf.Message) : scalarToObject(field, v);
}

function anyToObject(msg: protobuf.Message): Record<string, unknown> {
  // protobufjs bundles google/protobuf/any.proto with its original field name `type_url`.
  const m = msg as unknown as { type_url?: string; value?: Uint8Array };
  const url = m.type_url ?? '';
  const value = m.value ?? new Uint8Array(0);
  const t = lookupType(url);
  if (t === undefined) {
    const out: Record<string, unknown> = { '@type': url };
    if (value.length > 0) out.value = Buffer.from(value).toString('base64');
    return out;
  }
  return { '@type': url, ...messageToObject(t, t.decode(value)) };
}

function messageToObject(t: protobuf.Type, msg: protobuf.Message): Record<string, unknown> {
  if (t.fullName === '.google.protobuf.Any') return anyToObject(msg);
  const src = msg as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of t.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(src, field.name)) continue;
    const v = src[field.name];
    if (v === undefined || v === null) continue;
    field.resolve();
    if (field instanceof protobuf.MapField) {
      const keys = Object.keys(v as object);
      if (keys.length === 0) continue;
      const m: Record<string, unknown> = {};
      for (const k of keys) m[k] = fieldToObject(field, (v as Record<string, unknown>)[k]);
      out[field.name] = m;
    } else if (field.repeated) {
      const a = v as unknown[];
      if (a.length === 0) continue;
      out[field.name] = a.map((e) => fieldToObject(field, e));
    } else {
      out[field.name] = fieldToObject(field, v);
    }
  }
  return out;
}

/** Decodes one resource (the `value` of an Any whose type_url is `typeUrl`). */
export function decodeResource(typeUrl: string, bytes: Uint8Array): XdsMessage {
  const t = mustType(typeUrl);
  return messageToObject(t, t.decode(bytes));
}

// ---- canonical proto3 JSON -> protobufjs object form -------------------------------------

const WRAPPERS = new Set([
  '.google.protobuf.DoubleValue', '.google.protobuf.FloatValue', '.google.protobuf.Int64Value',
  '.google.protobuf.UInt64Value', '.google.protobuf.Int32Value', '.google.protobuf.UInt32Value',
  '.google.protobuf.BoolValue', '.google.protobuf.StringValue', '.google.protobuf.BytesValue',
]);

function camel(k: string): string {
  return k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** "1.5s" -> { seconds: '1', nanos: 500000000 } */
function durationFromJson(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'string') throw new Error(`${where}: a Duration must be a string like "1.5s"`);
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v);
  if (m === null) throw new Error(`${where}: bad Duration ${JSON.stringify(v)}`);
  const sign = m[1] === '-' ? -1 : 1;
  const nanos = m[3] === undefined ? 0 : Number(m[3].padEnd(9, '0'));
  return { seconds: String(sign * Number(m[2])), nanos: sign * nanos };
}

function timestampFromJson(v: unknown, where: string): Record<string, unknown> {
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) throw new Error(`${where}: bad Timestamp ${JSON.stringify(v)}`);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

function valueFromJson(v: unknown): Record<string, unknown> {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(valueFromJson) } };
  return { structValue: structFromJson(v as Record<string, unknown>) };
}

function structFromJson(v: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const k of Object.keys(v)) fields[k] = valueFromJson(v[k]);
  return { fields };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** An Any in canonical JSON -> { type_url, value: bytes } for protobufjs. */
function anyFromJson(v: unknown, where: string): Record<string, unknown> {
  if (!isObject(v) || typeof v['@type'] !== 'string') throw new Error(`${where}: an Any needs "@type"`);
  const url = v['@type'];
  const t = lookupType(url);
  if (t === undefined) {
    // A type this Root does not know (Istio's own filters): carried as opaque bytes.
    const raw = typeof v.value === 'string' ? Buffer.from(v.value, 'base64') : Buffer.alloc(0);
    return { type_url: url, value: raw };
  }
  let inner: unknown;
  if (t.fullName.startsWith('.google.protobuf.') && 'value' in v && Object.keys(v).length === 2) {
    inner = v.value; // well-known types carry their JSON form in "value"
  } else {
    const rest: Record<string, unknown> = {};
    for (const k of Object.keys(v)) if (k !== '@type') rest[k] = v[k];
    inner = rest;
  }
  return { type_url: url, value: t.encode(t.fromObject(messageFromJson(t, inner, where))).finish() };
}

/** proto3 JSON names ("consecutive5xx") of fields protobufjs keeps as "consecutive_5xx". */
function fieldByLooseName(t: protobuf.Type, key: string): protobuf.Field | undefined {
  const loose = key.replace(/_/g, '').toLowerCase();
  return t.fieldsArray.find((f) => f.name.replace(/_/g, '').toLowerCase() === loose);
}

function enumFromJson(e: protobuf.Enum, v: unknown, where: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && e.values[v] !== undefined) return e.values[v];
  throw new Error(`${where}: ${JSON.stringify(v)} is not a value of ${e.name}`);
}

function messageFromJson(t: protobuf.Type, v: unknown, where: string): Record<string, unknown> {
  switch (t.fullName) {
    case '.google.protobuf.Duration': return durationFromJson(v, where);
    case '.google.protobuf.Timestamp': return timestampFromJson(v, where);
    case '.google.protobuf.Struct':
      if (!isObject(v)) throw new Error(`${where}: a Struct must be an object`);
      return structFromJson(v);
    case '.google.protobuf.Value': return valueFromJson(v);
    case '.google.protobuf.ListValue':
      if (!Array.isArray(v)) throw new Error(`${where}: a ListValue must be an array`);
      return { values: v.map(valueFromJson) };
    case '.google.protobuf.Any': return anyFromJson(v, where);
    case '.google.protobuf.FieldMask':
      if (typeof v !== 'string') throw new Error(`${where}: a FieldMask must be a string`);
      return { paths: v === '' ? [] : v.split(',') };
    default:
      break;
  }
  if (WRAPPERS.has(t.fullName)) return { value: v };
  if (!isObject(v)) throw new Error(`${where}: ${t.fullName.slice(1)} must be an object`);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) {
    const field = t.fields[key] ?? t.fields[camel(key)] ?? fieldByLooseName(t, key);
    if (field === undefined) throw new Error(`${where}.${key}: no such field in ${t.fullName.slice(1)}`);
    field.resolve();
    const fv = v[key];
    const fwhere = `${where}.${key}`;
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      out[field.name] = Array.isArray(fv) ? fv.map((e, i) => enumFromJson(rt, e, `${fwhere}[${i}]`)) : enumFromJson(rt, fv, fwhere);
      continue;
    }
    if (!(rt instanceof protobuf.Type)) {
      out[field.name] = fv; // scalars: protobufjs fromObject reads the JSON forms (int64 as strings, bytes as base64)
      continue;
    }
    if (field instanceof protobuf.MapField) {
      if (!isObject(fv)) throw new Error(`${fwhere}: a map must be an object`);
      const m: Record<string, unknown> = {};
      for (const mk of Object.keys(fv)) m[mk] = messageFromJson(rt, fv[mk], `${fwhere}.${mk}`);
      out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(fv)) throw new Error(`${fwhere}: must be an array`);
      out[field.name] = fv.map((e, i) => messageFromJson(rt, e, `${fwhere}[${i}]`));
    } else {
      out[field.name] = messageFromJson(rt, fv, fwhere);
    }
  }
  return out;
}

/** Encodes canonical proto3 JSON of `typeUrl` to protobuf bytes. */
export function encodeJson(typeUrl: string, json: unknown): Uint8Array {
  const t = mustType(typeUrl);
  const obj = messageFromJson(t, json, typeName(typeUrl));
  return t.encode(t.fromObject(obj)).finish();
}

/** Canonical proto3 JSON (a fixture) -> the XdsMessage that decoding its wire form gives. */
export function fromJson(typeUrl: string, json: unknown): XdsMessage {
  return decodeResource(typeUrl, encodeJson(typeUrl, json));
}

/** Canonical proto3 JSON -> an Any as grpc-js sends it (test ADS server). */
export function packAny(typeUrl: string, json: unknown): { type_url: string; value: Buffer } {
  const bytes = encodeJson(typeUrl, json);
  return { type_url: typeUrl, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export interface DiscoveryTypes {
  readonly DiscoveryRequest: protobuf.Type;
  readonly DiscoveryResponse: protobuf.Type;
  readonly DeltaDiscoveryRequest: protobuf.Type;
  readonly DeltaDiscoveryResponse: protobuf.Type;
  /** envoy.service.discovery.v3.Resource (delta responses wrap each resource in one). */
  readonly Resource: protobuf.Type;
  /** The ADS service (StreamAggregatedResources, DeltaAggregatedResources). */
  readonly AggregatedDiscoveryService: protobuf.Service;
}

let discovery: DiscoveryTypes | undefined;

/** The ADS message types (loads the Root). */
export function discoveryTypes(): DiscoveryTypes {
  if (discovery !== undefined) return discovery;
  const r = protoRoot();
  const p = 'envoy.service.discovery.v3.';
  discovery = {
    DiscoveryRequest: r.lookupType(`${p}DiscoveryRequest`),
    DiscoveryResponse: r.lookupType(`${p}DiscoveryResponse`),
    DeltaDiscoveryRequest: r.lookupType(`${p}DeltaDiscoveryRequest`),
    DeltaDiscoveryResponse: r.lookupType(`${p}DeltaDiscoveryResponse`),
    Resource: r.lookupType(`${p}Resource`),
    AggregatedDiscoveryService: r.lookupService(`${p}AggregatedDiscoveryService`),
  };
  return discovery;
}

/** The type URLs of the five resource kinds (re-exported for the client). */
export { TYPE_URL };
