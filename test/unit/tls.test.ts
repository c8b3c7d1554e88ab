/**
 * TLS building blocks: MOSN spellings, config validation messages (path + source, never key
 * bytes), the ClientHello SNI reader, SNI selection, failure reasons, stats layout, access-log
 * variables. Certificates are made at test time with the openssl CLI.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConfigError, parseConfig } from '../../src/config';
import '../../src/extensions'; // filter validators register themselves (the config layer imports no filter)
import { compileAccessLogFormat, renderAccessLog } from '../../src/log';
import { C, CLUSTER_STATS, L, LISTENER_STATS } from '../../src/stats/layout';
import { parseSni } from '../../src/tls/client-hello';
import { mapCiphers, mapCurves, parseVersion, sourceOf } from '../../src/tls/material';
import { ServerTls } from '../../src/tls/server';
import { FailReason, failReason } from '../../src/tls/stats';
import { keyBody, Pki, type CertFiles } from '../helpers/certs';

let pki: Pki;
let alpha: CertFiles;
let beta: CertFiles;

before(() => {
  pki = new Pki();
  alpha = pki.issue({ cn: 'alpha.test', dns: ['alpha.test'] });
  beta = pki.issue({ cn: 'beta.test', dns: ['beta.test', '*.beta.test'], kind: 'rsa' });
});
after(() => pki.remove());

const L0 = 'servers[0].listeners[0]';

function doc(tlsContext: Record<string, unknown> | undefined, clusterTls?: Record<string, unknown>, set?: Record<string, unknown>[]): any {
  const chain: Record<string, unknown> = { filters: [{ type: 'tcp_proxy', config: { cluster: 'c0' } }] };
  if (tlsContext) chain.tls_context = tlsContext;
  if (set) chain.tls_context_set = set;
  const cluster: Record<string, unknown> = { name: 'c0', hosts: [{ address: '127.0.0.1:9' }] };
  if (clusterTls) cluster.tls_context = clusterTls;
  return { servers: [{ listeners: [{ name: 'l', address: '127.0.0.1:0', bind_port: true, filter_chains: [chain] }] }], cluster_manager: { clusters: [cluster] } };
}

function errors(d: unknown): string[] {
  try {
    parseConfig(d);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.errors.map((x) => `${x.path}: ${x.message}`);
  }
  return [];
}

describe('tls: MOSN spellings', () => {
  test('versions, ciphers, curves, sources', () => {
    assert.equal(parseVersion('TLSv1_2'), 'TLSv1.2');
    assert.equal(parseVersion('tls_auto'), 'auto');
    assert.equal(parseVersion('tlsv1.3'), 'TLSv1.3');
    assert.equal(parseVersion('ssl3'), undefined);
    const c = mapCiphers('ECDHE-ECDSA-WITH-CHACHA20-POLY1305:AES128-GCM-SHA256');
    assert.ok('list' in c && c.list === 'ECDHE-ECDSA-CHACHA20-POLY1305:TLS_AES_128_GCM_SHA256', JSON.stringify(c));
    const only12 = mapCiphers('ECDHE-RSA-AES128-GCM-SHA256');
    assert.ok('list' in only12 && only12.list.startsWith('TLS_AES_128_GCM_SHA256:'), 'TLS 1.3 suites stay on, as in Go');
    assert.deepEqual(mapCiphers('RC4-MD5-NOPE'), { unknown: 'RC4-MD5-NOPE' });
    assert.deepEqual(mapCurves('x25519,P256'), { list: 'X25519:P-256' });
    assert.deepEqual(sourceOf('/etc/a.pem'), { kind: 'file', path: '/etc/a.pem' });
    assert.equal(sourceOf('-----BEGIN CERTIFICATE-----\nx').kind, 'inline');
  });
});

describe('tls: config validation', () => {
  test('a valid listener and cluster context parse with safe defaults', () => {
    const cfg = parseConfig(doc({ status: true, cert_chain: alpha.cert, private_key: alpha.key, alpn: 'h2,http/1.1' }, { status: true, server_name: 'up.test', ca_cert: pki.ca.cert }));
    const t = cfg.servers[0]!.listeners[0]!.filterChains[0]!.tlsContexts![0]!;
    assert.equal(t.minVersion, 'TLSv1.2');
    assert.equal(t.maxVersion, 'TLSv1.3');
    assert.deepEqual(t.alpn, ['h2', 'http/1.1']);
    assert.ok(!/CBC|DES|RC4/.test(t.ciphers));
    assert.equal(cfg.clusters[0]!.tlsContext!.serverName, 'up.test');
  });

  test('errors name the path and the file, never key bytes', () => {
    const e1 = errors(doc({ status: true, cert_chain: '/x.pem', private_key: alpha.key }));
    assert.ok(e1.includes(`${L0}.filter_chains[0].tls_context.cert_chain: file "/x.pem" not found`), e1.join('\n'));
    const e2 = errors(doc({ status: true, cert_chain: alpha.cert, private_key: beta.key }));
    assert.ok(e2.some((x) => x === `${L0}.filter_chains[0].tls_context.private_key: file ${JSON.stringify(beta.key)} does not match the certificate in cert_chain`), e2.join('\n'));
    const inlineKey = fs.readFileSync(beta.key, 'utf8');
    const e3 = errors(doc({ status: true, cert_chain: alpha.cert, private_key: inlineKey }));
    assert.ok(e3.some((x) => x.endsWith('private_key: inline PEM does not match the certificate in cert_chain')), e3.join('\n'));
    for (const line of keyBody(beta.key)) assert.ok(!e3.join('\n').includes(line), 'no key bytes in errors');
    const e4 = errors(doc({ status: true, cert_chain: alpha.cert, private_key: alpha.key, min_version: 'tlsv1_3', max_version: 'tlsv1_2', cipher_suites: 'NOPE', alpn: 'spdy' }));
    assert.ok(e4.some((x) => x.includes('tls_context.min_version: "tlsv1_3" is above max_version')), e4.join('\n'));
    assert.ok(e4.some((x) => x.includes('tls_context.cipher_suites: "NOPE" is not a known cipher suite')));
    assert.ok(e4.some((x) => x.includes('tls_context.alpn: "spdy" is not a supported ALPN protocol')));
    const e5 = errors(doc({ status: true, cert_chain: alpha.cert, private_key: alpha.key, extend_verify: { x: 1 } }));
    assert.ok(e5.some((x) => x.includes('tls_context.extend_verify: custom verification extensions are not supported')));
    const e6 = errors(doc(undefined, undefined, [
      { status: true, cert_chain: alpha.cert, private_key: alpha.key },
      { status: true, cert_chain: beta.cert, private_key: beta.key, verify_client: true, ca_cert: pki.ca.cert },
    ]));
    assert.ok(e6.some((x) => x.startsWith(`${L0}.filter_chains[0].tls_context_set[1].verify_client: must be the same in every entry`)), e6.join('\n'));
  });

  test('MOSN client-auth semantics and warnings', () => {
    const cfg = parseConfig(doc({ status: true, cert_chain: alpha.cert, private_key: alpha.key, require_client_cert: true, min_version: 'tlsv1_0' }));
    assert.ok(cfg.warnings!.some((w) => w.includes('require_client_cert: without verify_client only REQUESTS')));
    assert.ok(cfg.warnings!.some((w) => w.includes('min_version: "tlsv1_0": TLS 1.0/1.1 are insecure')));
  });
});

describe('tls: ClientHello SNI and selection', () => {
  test('parseSni reads the name from a real ClientHello; garbage gives ""', async () => {
    const hello = await new Promise<Buffer>((resolve) => {
      const srv = net.createServer((s) => s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      }));
      srv.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, servername: 'api.beta.test' });
        c.on('error', () => {});
      });
    });
    assert.equal(parseSni(hello), 'api.beta.test');
    for (let n = 0; n < hello.length; n += 7) assert.equal(typeof parseSni(hello.subarray(0, n)), 'string', 'truncated hellos never throw');
    assert.equal(parseSni(Buffer.from('GET / HTTP/1.1\r\n')), '');
    const junk = Buffer.from(hello);
    junk.writeUInt16BE(0xffff, 3);
    assert.equal(typeof parseSni(junk), 'string');
  });

  test('ServerTls.select: exact names, wildcards, default', () => {
    const cfg = parseConfig(doc(undefined, undefined, [
      { status: true, cert_chain: alpha.cert, private_key: alpha.key },
      { status: true, cert_chain: beta.cert, private_key: beta.key, server_name: 'gamma.test' },
    ]));
    const chain = cfg.servers[0]!.listeners[0]!.filterChains[0]!;
    const st = new ServerTls('l', chain.tlsContexts!, chain.filters, new Float64Array(64), 0, false);
    try {
      const second = st.select('beta.test');
      assert.ok(second.names.has('beta.test'));
      assert.equal(st.select('x.beta.test'), second);
      assert.equal(st.select('GAMMA.test.'), second, 'server_name, case-insensitive, trailing dot');
      assert.ok(st.select('alpha.test').names.has('alpha.test'));
      assert.ok(st.select(undefined).names.has('alpha.test'), 'no SNI -> first');
      assert.ok(st.select('unknown.example').names.has('alpha.test'));
    } finally {
      st.close();
    }
  });
});

describe('tls: stats and access log', () => {
  test('failure reasons', () => {
    const e = (code: string, msg = ''): Error => Object.assign(new Error(msg), { code });
    assert.equal(failReason(e('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')), FailReason.NoCertificate);
    assert.equal(failReason(e('ERR_SSL_UNSUPPORTED_PROTOCOL')), FailReason.Version);
    assert.equal(failReason(e('ERR_TLS_CERT_ALTNAME_INVALID')), FailReason.Verify);
    assert.equal(failReason(e('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), FailReason.Verify);
    assert.equal(failReason(e('ECONNRESET')), FailReason.Other);
  });

  test('TLS slot constants match the appended names', () => {
    assert.equal(LISTENER_STATS[L.TLS_HANDSHAKE], 'downstream_tls_handshake');
    assert.equal(LISTENER_STATS[L.TLS_CERT_RELOAD_FAIL], 'downstream_tls_cert_reload_fail');
    assert.equal(LISTENER_STATS[L.TLS_FAIL_VERSION], 'downstream_tls_fail_version');
    assert.equal(CLUSTER_STATS[C.TLS_HANDSHAKE], 'upstream_tls_handshake');
    assert.equal(CLUSTER_STATS[C.TLS_CIPHER_OTHER], 'upstream_tls_cipher_other');
  });

  test('access-log TLS variables', () => {
    const f = compileAccessLogFormat('%downstream_peer_uri_san% %DOWNSTREAM_TLS_VERSION% %requested_server_name% %downstream_peer_subject%');
    const line = renderAccessLog(f, {
      startTime: 0,
      downstreamTls: {
        version: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', serverName: 'a.test',
        peer: { subject: 'CN=c', issuer: 'CN=ca', uriSans: ['spiffe://t/ns/a/sa/b'], dnsSans: [], serialNumber: '1', fingerprint256: 'ab' },
      },
    });
    assert.equal(line, 'spiffe://t/ns/a/sa/b TLSv1.3 a.test CN=c');
    assert.equal(renderAccessLog(f, { startTime: 0 }), '- - - -', 'plaintext connections print "-"');
  });
});
