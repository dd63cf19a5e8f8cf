// fhir-kit-client (a real FHIR client, from npm) driving every interaction of the facade's route table.
//
//   node kit_client.mjs BASE        e.g. http://127.0.0.1:8080/fhir
//
// Prints one JSON array: per step its name, HTTP status, response headers and body (an error's too), for
// tests/gateway/test_facade_clients.py to check, parse with fhir.resources and scan for upstream addresses.

import { Client } from 'fhir-kit-client';

const baseUrl = process.argv[2];
const client = new Client({ baseUrl });
const steps = [];

async function step(name, fn) {
  try {
    const body = await fn();
    const http = body ? Client.httpFor(body) : undefined;
    const response = http?.response;
    steps.push({ name, status: response?.status, headers: Object.fromEntries(response?.headers ?? []), body });
    return body;
  } catch (err) {
    steps.push({ name, status: err.response?.status, headers: Object.fromEntries(err.response?.headers ?? []),
      body: err.response?.data, error: String(err.message ?? err) });
    return undefined;
  }
}

const patient = (family, n) => ({
  resourceType: 'Patient', identifier: [{ system: 'urn:test:kit', value: `${family}-${n}` }],
  name: [{ family, given: ['Ada'] }], gender: 'female', birthDate: '1970-01-01',
});

await step('capabilities', () => client.capabilityStatement());
const created = await step('create', () => client.create({ resourceType: 'Patient', body: patient('Kit', 0),
  options: { headers: { prefer: 'return=representation' } } }));
const id = created?.id;
const read = await step('read', () => client.read({ resourceType: 'Patient', id }));
await step('vread', () => client.vread({ resourceType: 'Patient', id, version: read?.meta?.versionId }));
await step('update', () => client.update({ resourceType: 'Patient', id, body: { ...read, gender: 'other' },
  options: { headers: { 'if-match': `W/"${read?.meta?.versionId}"` } } }));
await step('patch', () => client.patch({ resourceType: 'Patient', id,
  jsonPatch: [{ op: 'replace', path: '/gender', value: 'male' }] }));
await step('history-instance', () => client.history({ resourceType: 'Patient', id }));
await step('conditional-create', () => client.create({ resourceType: 'Patient', body: patient('Kit', 0),
  options: { headers: { 'if-none-exist': 'identifier=urn:test:kit|Kit-0' } } }));
await step('conditional-update', () => client.update({ resourceType: 'Patient',
  searchParams: { identifier: 'urn:test:kit|Kit-9' }, body: patient('Kit', 9) }));
for (let n = 0; n < 7; n++) {
  await step(`create-pager-${n}`, () => client.create({ resourceType: 'Patient', body: patient('Kitpager', n) }));
}
let page = await step('search-page-1', () => client.search({ resourceType: 'Patient',
  searchParams: { family: 'Kitpager', _count: 3 } }));
for (let n = 2; page && n < 10; n++) {
  const next = client.nextPage({ bundle: page });
  if (!next) {
    break;
  }
  page = await step(`search-page-${n}`, () => next);
}
await step('search-post', () => client.search({ resourceType: 'Patient', searchParams: { family: 'Kitpager' },
  options: { postSearch: true } }));
await step('search-system', () => client.systemSearch({ searchParams: { _type: 'Patient', family: 'Kitpager' } }));
await step('history-type', () => client.history({ resourceType: 'Patient' }));
await step('history-system', () => client.history());
await step('transaction', () => client.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [{
  fullUrl: 'urn:uuid:0d7a2f5e-1b5c-4f0e-9a43-7d1e6c2b9f01', resource: patient('Kittx', 0),
  request: { method: 'POST', url: 'Patient' } }] } }));
await step('batch', () => client.batch({ body: { resourceType: 'Bundle', type: 'batch', entry: [{
  request: { method: 'GET', url: 'Patient?family=Kittx' } }] } }));
await step('validate-type', () => client.operation({ name: '$validate', resourceType: 'Patient',
  input: patient('Kitval', 0) }));
await step('validate-instance', () => client.operation({ name: '$validate', resourceType: 'Patient', id,
  input: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { ...patient('Kit', 0), id } }] } }));
await step('delete', () => client.delete({ resourceType: 'Patient', id }));
await step('read-deleted', () => client.read({ resourceType: 'Patient', id }));
await step('conditional-delete', () => client.request('Patient?identifier=urn:test:kit|Kit-9', { method: 'DELETE' }));
process.stdout.write(JSON.stringify(steps));
