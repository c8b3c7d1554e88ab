/**
 * Any field of a decoded resource may be absent (proto3): removing any one field, anywhere, of
 * every fixture resource gives an ACK or an XdsResourceError (a NACK with a path), never another
 * exception.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { translator } from '../../../src/xds/translate';
import { XdsResourceError, type XdsMessage, type XdsTranslator } from '../../../src/xds/types';
import { Pki } from '../../helpers/certs';
import { loadFixtures, recordingContext } from './fixtures';

type Json = Record<string, unknown> | unknown[];

/** Paths (as key lists) of every field and array element below `v`. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (Array.isArray(v)) v.forEach((x, i) => { out.push([...prefix, i]); paths(x, [...prefix, i], out); });
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) { out.push([...prefix, k]); paths((v as Record<string, unknown>)[k], [...prefix, k], out); }
  return out;
}

function without(m: XdsMessage, p: (string | number)[]): XdsMessage {
  const copy = structuredClone(m) as Json;
  let cur: Json = copy;
  for (const k of p.slice(0, -1)) cur = (cur as Record<string | number, unknown>)[k] as Json;
  const last = p[p.length - 1];
  if (Array.isArray(cur) && typeof last === 'number') cur.splice(last, 1);
  else delete (cur as Record<string, unknown>)[last as string];
  return copy as XdsMessage;
}

test('removing any one field of any fixture resource never throws anything but a NACK', () => {
  const pki = new Pki();
  const leaf = pki.issue({ cn: 'w' });
  const fx = loadFixtures({ cert: fs.readFileSync(leaf.cert, 'utf8'), key: fs.readFileSync(leaf.key, 'utf8'), ca: fs.readFileSync(pki.ca.cert, 'utf8') });
  const secrets = fx.secrets.map((s) => translator.secret(s, recordingContext()));
  let runs = 0;
  let nacks = 0;
  const kinds: [keyof XdsTranslator, readonly XdsMessage[]][] = [
    ['listener', fx.listeners], ['route', fx.routes], ['cluster', fx.clusters], ['endpoints', fx.endpoints], ['secret', fx.secrets],
  ];
  for (const [kind, list] of kinds) {
    for (const m of list) {
      for (const p of paths(m)) {
        runs++;
        try {
          (translator[kind] as (m: XdsMessage, c: ReturnType<typeof recordingContext>) => unknown)(without(m, p), recordingContext(secrets));
        } catch (e) {
          assert.ok(e instanceof XdsResourceError, `${kind} without ${p.join('.')}: ${e instanceof Error ? e.stack : String(e)}`);
          nacks++;
        }
      }
    }
  }
  pki.remove();
  assert.ok(runs > 500 && nacks > 0, `${runs} runs, ${nacks} NACKs`);
});
