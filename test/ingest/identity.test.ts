// Identity helpers: canonical identities, SPIFFE parts, service hosts, Istio cluster names and SNI,
// pod → workload names, XFCC.
import { describe, expect, it } from 'vitest';
import {
  buildSpiffeId,
  canonicalizeIdentity,
  directionOfCluster,
  hostOfCluster,
  hostOfIstioSni,
  namespaceOfHost,
  namespaceOfSpiffe,
  parseSpiffeId,
  parseXfcc,
  portOfCluster,
  serviceAccountOfSpiffe,
  serviceOfHost,
  workloadOfPod,
} from '../../ingest/identity.ts';

describe('canonicalizeIdentity', () => {
  it.each([
    ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews', 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews'],
    ['system:serviceaccount:ci:deployer', 'spiffe://cluster.local/ns/ci/sa/deployer'],
    ['spiffe://td/ns/a/sa/b,spiffe://td/ns/c/sa/d', 'spiffe://td/ns/a/sa/b'],
    ['reviews.default.svc,spiffe://td/ns/a/sa/b', 'spiffe://td/ns/a/sa/b'],
    ['  alice@example.com ', 'alice@example.com'],
    ['system:serviceaccount:broken', 'system:serviceaccount:broken'],
    ['-', ''],
    ['unknown', ''],
    ['', ''],
  ])('%j → %j', (value, canonical) => {
    expect(canonicalizeIdentity(value)).toBe(canonical);
  });

  it('uses the given trust domain for service accounts', () => {
    expect(canonicalizeIdentity('system:serviceaccount:ns:sa', 'prod.example.org')).toBe('spiffe://prod.example.org/ns/ns/sa/sa');
    expect(buildSpiffeId('ns', 'sa')).toBe('spiffe://cluster.local/ns/ns/sa/sa');
    expect(buildSpiffeId('', 'sa')).toBe('');
  });
});

describe('parseSpiffeId', () => {
  it('splits workload IDs and refuses others', () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account')).toEqual({
      trustDomain: 'cluster.local',
      namespace: 'istio-system',
      serviceAccount: 'istio-ingressgateway-service-account',
    });
    // Asked twice: the memo must give the same answer.
    expect(parseSpiffeId('spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account')?.namespace).toBe('istio-system');
    expect(parseSpiffeId('spiffe://example.org/workload/web')).toBeUndefined();
    expect(parseSpiffeId('spiffe://example.org/workload/web')).toBeUndefined();
    expect(parseSpiffeId('https://example.org/ns/a/sa/b')).toBeUndefined();
    expect(parseSpiffeId('spiffe:///ns/a/sa/b')).toBeUndefined();
    expect(namespaceOfSpiffe('spiffe://td/ns/a/sa/b')).toBe('a');
    expect(serviceAccountOfSpiffe('spiffe://td/ns/a/sa/b/extra')).toBe('b');
    expect(namespaceOfSpiffe('alice')).toBe('');
  });
});

describe('service hosts, clusters, SNI', () => {
  it.each([
    ['reviews.default.svc.cluster.local:9080', 'reviews', 'default'],
    ['reviews.default.svc.cluster.local', 'reviews', 'default'],
    ['reviews.default.svc', 'reviews', 'default'],
    ['*.infra-kafka-headless.infra.svc.cluster.local', 'infra-kafka-headless', 'infra'],
    ['reviews:9080', 'reviews', ''],
    ['reviews.default', 'reviews.default', ''],
    ['httpbin.tetrate.io', 'httpbin.tetrate.io', ''],
    ['10.0.0.1:80', '', ''],
    ['[::1]:80', '', ''],
    ['172.18.10.10', '', ''],
    ['-', '', ''],
  ])('%j → %j / %j', (host, service, namespace) => {
    expect([serviceOfHost(host), namespaceOfHost(host)]).toEqual([service, namespace]);
  });

  it('reads Istio cluster names', () => {
    expect(directionOfCluster('outbound|9080||reviews.default.svc.cluster.local')).toBe('outbound');
    expect(directionOfCluster('inbound|8000||')).toBe('inbound');
    expect(directionOfCluster('InboundPassthroughClusterIpv4')).toBe('inbound');
    expect(directionOfCluster('PassthroughCluster')).toBe('outbound');
    expect(directionOfCluster('my_cluster')).toBe('');
    expect(hostOfCluster('outbound|34021|release-brand|sapi-tenant-part.sopei-biz.svc.cluster.local')).toBe('sapi-tenant-part.sopei-biz.svc.cluster.local');
    expect(hostOfCluster('inbound|8000||')).toBe('');
    expect(hostOfCluster('my_cluster')).toBe('');
    expect(portOfCluster('outbound|9080||reviews')).toBe(9080);
    expect(portOfCluster('inbound|8000||')).toBe(8000);
    expect(portOfCluster('PassthroughCluster')).toBe(0);
  });

  it('reads the service host in Istio mTLS SNI', () => {
    expect(hostOfIstioSni('outbound_.8000_._.httpbin.foo.svc.cluster.local')).toBe('httpbin.foo.svc.cluster.local');
    expect(hostOfIstioSni('outbound_.9080_.v1_.reviews.default.svc.cluster.local')).toBe('reviews.default.svc.cluster.local');
    expect(hostOfIstioSni('httpbin.tetrate.io')).toBe('');
    expect(hostOfIstioSni('-')).toBe('');
  });
});

describe('workloadOfPod', () => {
  it.each([
    ['reviews-v1-545db77b95-s6jb8', 'reviews-v1'],
    ['deathstar-7848d6c4d5-th9v2', 'deathstar'],
    ['productpage-v1-d5789fdfb-c5w2c', 'productpage-v1'],
    ['node-local-dns-r99x7', 'node-local-dns'],
    ['event-exporter-gke-67986489c8-svnrf', 'event-exporter-gke'],
    ['xwing', 'xwing'],
    ['kafka-0', 'kafka-0'],
    ['web-shard', 'web-shard'],
    ['', ''],
  ])('%j → %j', (pod, workload) => {
    expect(workloadOfPod(pod)).toBe(workload);
  });
});

describe('parseXfcc', () => {
  it('reads the last element, quoted subjects with commas included', () => {
    expect(parseXfcc('By=spiffe://td/ns/b/sa/server;Hash=abc;Subject="O=x, CN=y";URI=spiffe://td/ns/a/sa/client')).toEqual({
      uri: 'spiffe://td/ns/a/sa/client',
      by: 'spiffe://td/ns/b/sa/server',
    });
    expect(parseXfcc('By=spiffe://td/ns/g/sa/gw;URI=spiffe://td/ns/x/sa/first,By=spiffe://td/ns/b/sa/server;URI=spiffe://td/ns/g/sa/gw').uri).toBe('spiffe://td/ns/g/sa/gw');
    expect(parseXfcc('')).toEqual({ uri: '', by: '' });
    expect(parseXfcc('garbage')).toEqual({ uri: '', by: '' });
  });
});
