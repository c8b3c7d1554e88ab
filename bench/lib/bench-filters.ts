// Issue 13's three filters as the bench configures them: RBAC with 10 policies, a local rate
// limit that never rejects, and tracing at 1 % sampling exported to a collector. Used by
// filters-cost (its own sidecars) and by the `outrigger-filters` bench peers (the bench
// workloads' own configs with the filters added), so both measure the same filters.

/** RBAC with 10 policies (the last matches, so every request walks all ten) and a rate limit that never rejects. */
export function benchFilters(): unknown[] {
  const policies: Record<string, unknown> = {};
  for (let i = 0; i < 9; i++) {
    policies[`deny-like-${i}`] = {
      permissions: [{ and_rules: { rules: [{ header: { name: ':method', exact_match: 'DELETE' } }, { url_path: { path: { prefix: `/admin/${i}/` } } }] } }],
      principals: [{ source_ip: { address_prefix: `10.${i}.0.0`, prefix_len: 16 } }],
    };
  }
  policies['zz-local'] = { permissions: [{ any: true }], principals: [{ direct_remote_ip: { address_prefix: '127.0.0.0', prefix_len: 8 } }] };
  const all = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  return [
    { type: 'rbac', config: { rules: { action: 'ALLOW', policies } } },
    {
      type: 'local_ratelimit',
      config: { stat_prefix: 'bench', token_bucket: { max_tokens: 1_000_000_000, tokens_per_fill: 1_000_000_000, fill_interval: '1s' }, filter_enabled: all, filter_enforced: all },
    },
  ];
}

/** The top-level `tracing` section: SOFATracer propagation, OTLP protobuf to `collector`, `ratio` sampling. */
export function benchTracing(collector: string, ratio: number, batchIntervalS: number): unknown {
  return { enable: true, driver: 'SOFATracer', config: { collector, encoding: 'protobuf', sampling_ratio: ratio, batch_interval: `${batchIntervalS}s` } };
}

/**
 * A copy of an Outrigger (MOSN JSON) config with the three filters on every listener whose
 * chain has a `proxy` filter, and tracing at `ratio`. Throws when no listener takes them (a
 * workload without an L7 proxy: the filters would not run, so the comparison would be empty).
 */
export function withBenchFilters(doc: object, collector: string, ratio = 0.01): object {
  const out = JSON.parse(JSON.stringify(doc)) as { servers: { listeners: { filter_chains: { filters: { type: string }[] }[]; stream_filters?: unknown[] }[] }[] };
  let n = 0;
  for (const server of out.servers) {
    for (const l of server.listeners) {
      if (!l.filter_chains.some((c) => c.filters.some((f) => f.type === 'proxy'))) continue;
      l.stream_filters = benchFilters();
      n++;
    }
  }
  if (n === 0) throw new Error('no listener with a proxy filter: the bench filters apply to bolt, dubbo, http1, http2 and grpc');
  return { ...out, tracing: benchTracing(collector, ratio, 1) };
}
