/**
 * A test OTLP/HTTP collector: records POSTed trace exports. JSON bodies are decoded (OTLP JSON:
 * hex trace and span ids); protobuf bodies are kept raw (tests look for the 16 trace id bytes).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CollectedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  readonly kind: number;
  readonly service: string;
  readonly attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
}

export interface Collector {
  readonly url: string;
  readonly spans: CollectedSpan[];
  readonly protobufBodies: Buffer[];
  readonly contentTypes: string[];
  /** Resolves once `n` spans (JSON) or `n` protobuf bodies arrived, or rejects after `ms`. */
  waitFor(n: number, ms?: number, protobuf?: boolean): Promise<void>;
  close(): Promise<void>;
}

interface JsonAttr {
  key: string;
  value: Record<string, unknown>;
}

export async function startCollector(): Promise<Collector> {
  const spans: CollectedSpan[] = [];
  const protobufBodies: Buffer[] = [];
  const contentTypes: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ct = String(req.headers['content-type'] ?? '');
      contentTypes.push(ct);
      if (ct.includes('json')) {
        const doc = JSON.parse(body.toString()) as { resourceSpans?: { resource?: { attributes?: JsonAttr[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] };
        for (const rs of doc.resourceSpans ?? []) {
          const svc = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue;
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const attributes: Record<string, unknown> = {};
              for (const a of (s.attributes as JsonAttr[] | undefined) ?? []) attributes[a.key] = Object.values(a.value)[0];
              spans.push({
                traceId: String(s.traceId),
                spanId: String(s.spanId),
                parentSpanId: String(s.parentSpanId ?? ''),
                name: String(s.name),
                kind: Number(s.kind),
                service: String(svc ?? ''),
                attributes,
                statusCode: Number((s.status as { code?: unknown } | undefined)?.code ?? 0),
              });
            }
          }
        }
      } else protobufBodies.push(body);
      res.writeHead(200, { 'content-type': ct.includes('json') ? 'application/json' : 'application/x-protobuf' });
      res.end(ct.includes('json') ? '{}' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    protobufBodies,
    contentTypes,
    async waitFor(n, ms = 5000, protobuf = false) {
      const until = Date.now() + ms;
      while ((protobuf ? protobufBodies.length : spans.length) < n) {
        if (Date.now() > until) throw new Error(`collector: ${protobuf ? protobufBodies.length : spans.length} of ${n} arrived`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
