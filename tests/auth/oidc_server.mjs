// Test authorization server: panva's oidc-provider (npm, pinned in tests/upstream/package.json) on loopback,
// issuing SMART Backend Services style client_credentials tokens to clients that authenticate with private_key_jwt.
//
//   node oidc_server.mjs CONFIG.json
//
// Prints one line `listening http://127.0.0.1:PORT` (the issuer) on stdout when ready. CONFIG (JSON):
//   port            0 picks a free port
//   resource        default resource indicator (the audience of tokens requested without `resource`)
//   scopes          scopes the AS knows (it silently drops any other requested scope)
//   clients         client metadata: client_id, jwks (public), token_endpoint_auth_method (private_key_jwt |
//                   client_secret_basic | client_secret_post), token_endpoint_auth_signing_alg, client_secret,
//                   scope, plus this server's extras:
//                     x_token_format  "jwt" (default) | "opaque" — the access token format issued to the client
//                     x_token_alg     alg of JWT access tokens (RS256 default; ES384, PS256 … also served)
//                     x_claims        extra claims put into the client's tokens (patient, fhirUser …)
//   signing_keys    optional private JWKs of the AS (RSA and EC P-384 keys are generated when absent)
//   registration_token  optional: enables RFC 7591 registration at /reg with this initial access token
//   access_token_ttl    seconds (300 default, SMART Backend Services' cap)
// Any resource indicator is accepted and becomes the token's `aud`. Test controls (not OAuth):
//   GET /_admin/stats   {requests: {path: count}} — e.g. how often /jwks was fetched

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// The npm packages of the tests live in tests/upstream/node_modules (one package.json, one lock, one `npm ci`).
const entry = createRequire(new URL('../upstream/package.json', import.meta.url)).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const TTL = config.access_token_ttl ?? 300;
const counts = {};

function generatedKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, kid: `rsa-${crypto.randomUUID()}`, use: 'sig' }, { ...ec, kid: `ec-${crypto.randomUUID()}`, use: 'sig' }];
}

const server = http.createServer();
server.listen(config.port ?? 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const clientOf = async (ctx, id) => (id ? ctx.oidc.provider.Client.find(id) : undefined);

  const provider = new Provider(issuer, {
    clients: config.clients ?? [],
    jwks: { keys: config.signing_keys ?? generatedKeys() },
    scopes: config.scopes ?? [],
    clientAuthMethods: ['private_key_jwt', 'client_secret_basic', 'client_secret_post'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS384', 'ES384', 'RS256', 'ES256', 'PS256', 'PS384'],
    },
    extraClientMetadata: { properties: ['x_token_format', 'x_token_alg', 'x_claims'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: config.registration_token
        ? { enabled: true, initialAccessToken: config.registration_token }
        : { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? config.resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator, client) => ({
          audience: resourceIndicator,
          scope: (config.scopes ?? []).join(' '),
          accessTokenTTL: TTL,
          accessTokenFormat: client?.x_token_format === 'opaque' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: client?.x_token_alg ?? 'RS256' } },
        }),
      },
    },
    extraTokenClaims: async (ctx, token) => (await clientOf(ctx, token.clientId))?.x_claims,
    ttl: { ClientCredentials: TTL, AccessToken: TTL },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));

  const callback = provider.callback();
  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/_admin/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ requests: counts }));
      return;
    }
    counts[path] = (counts[path] ?? 0) + 1;
    callback(req, res);
  });
  console.log(`listening ${issuer}`);
});
