// Verifies keyward access tokens with standard libraries, unmodified: OIDC discovery with
// openid-client (which checks the issuer), then jose's createRemoteJWKSet + jwtVerify with
// the realm's issuer, audience "keyward", typ "at+jwt" and the realm's one algorithm, and
// oauth4webapi's resource-server validation of the JWT access-token profile (RFC 9068).
// Also checks that the libraries refuse a tampered token and tokens of other realms, and
// calls userinfo, introspection and the client_credentials grant through openid-client.
//
//   node verify.mjs REALMS.json
//
// REALMS.json: [{"name", "issuer", "alg", "clientId", "clientSecret", "accessToken"}, …]
// (clientId / clientSecret: a service account's username and kws_ token; accessToken:
// a token the realm issued to it). Prints one line per check; exits 1 on any failure.

import { readFileSync } from 'node:fs';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

const AUDIENCE = 'keyward';
const TYP = 'at+jwt';

const file = process.argv[2];
if (!file) {
  console.error('usage: node verify.mjs REALMS.json');
  process.exit(2);
}
const realms = JSON.parse(readFileSync(file, 'utf8'));

let failures = 0;
const ok = (realm, check, detail) => console.log(`ok    ${realm.name.padEnd(8)} ${check}${detail ? `: ${detail}` : ''}`);
const fail = (realm, check, detail) => {
  failures += 1;
  console.log(`FAIL  ${realm.name.padEnd(8)} ${check}: ${detail}`);
};
const describe = (error) =>
  [error?.code, error?.name !== 'Error' ? error?.name : null, error?.message].filter(Boolean).join(' ');

/** Runs one check; a thrown error fails it with what the library said. */
async function check(realm, name, body) {
  try {
    const detail = await body();
    ok(realm, name, detail);
    return true;
  } catch (error) {
    fail(realm, name, describe(error));
    if (error?.cause instanceof Error) console.log(`      cause: ${describe(error.cause)}`);
    return false;
  }
}

/** Expects the library to refuse `token`; `codes` are the jose error codes that count. */
async function expectRefused(realm, name, codes, verify) {
  try {
    await verify();
    fail(realm, name, 'the library ACCEPTED it');
  } catch (error) {
    if (codes.includes(error?.code)) ok(realm, name, `refused, ${error.code}`);
    else fail(realm, name, `refused for an unexpected reason: ${describe(error)}`);
  }
}

/** The token with one byte of its payload changed: exp's last digit, so it still parses. */
function tamper(token) {
  const [header, payload, signature] = token.split('.');
  const json = Buffer.from(payload, 'base64url').toString('utf8');
  const changed = json.replace(/("exp":\d*)(\d)/, (_, head, digit) => `${head}${(Number(digit) + 1) % 10}`);
  if (changed === json || changed.length !== json.length) throw new Error('no exp claim to change');
  return [header, Buffer.from(changed, 'utf8').toString('base64url'), signature].join('.');
}

const verifyOptions = (realm) => ({ issuer: realm.issuer, audience: AUDIENCE, typ: TYP, algorithms: [realm.alg] });

// Discovery and the remote JWKS of every realm first: the cross-realm checks need them all.
for (const realm of realms) {
  await check(realm, 'discovery (openid-client, issuer checked)', async () => {
    realm.config = await client.discovery(new URL(realm.issuer), realm.clientId, undefined, client.ClientSecretBasic(realm.clientSecret), {
      execute: [client.allowInsecureRequests],
    });
    const metadata = realm.config.serverMetadata();
    if (metadata.issuer !== realm.issuer) throw new Error(`issuer ${metadata.issuer}, expected ${realm.issuer}`);
    if (!metadata.jwks_uri) throw new Error('no jwks_uri');
    realm.jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
    return metadata.jwks_uri;
  });
}

for (const realm of realms) {
  if (!realm.config) {
    fail(realm, 'remaining checks', 'skipped: discovery failed');
    continue;
  }

  await check(realm, `jwtVerify ${realm.alg} (createRemoteJWKSet, issuer, audience, typ)`, async () => {
    const { payload, protectedHeader } = await jose.jwtVerify(realm.accessToken, realm.jwks, verifyOptions(realm));
    if (protectedHeader.alg !== realm.alg) throw new Error(`header alg ${protectedHeader.alg}`);
    for (const claim of ['sub', 'jti', 'azp', 'preferred_username']) {
      if (typeof payload[claim] !== 'string' || payload[claim] === '') throw new Error(`claim ${claim} missing`);
    }
    for (const claim of ['exp', 'iat', 'nbf']) {
      if (!Number.isInteger(payload[claim])) throw new Error(`claim ${claim} missing`);
    }
    if (!Array.isArray(payload.groups)) throw new Error('claim groups missing');
    if (payload.azp !== realm.clientId || payload.preferred_username !== realm.clientId) {
      throw new Error(`azp ${payload.azp} / preferred_username ${payload.preferred_username}, expected ${realm.clientId}`);
    }
    realm.claims = payload;
    return `kid ${protectedHeader.kid}, sub ${payload.sub}, exp in ${payload.exp - payload.iat} s`;
  });

  await check(realm, 'RFC 9068 access-token profile (oauth4webapi validateJwtAccessToken)', async () => {
    const request = new Request('http://resource.invalid/', { headers: { authorization: `Bearer ${realm.accessToken}` } });
    const claims = await oauth.validateJwtAccessToken(realm.config.serverMetadata(), request, AUDIENCE, {
      signingAlgorithms: [realm.alg],
      [oauth.allowInsecureRequests]: true,
    });
    return `client_id ${claims.client_id}`;
  });

  await expectRefused(realm, 'tampered token (one payload byte) refused', ['ERR_JWS_SIGNATURE_VERIFICATION_FAILED'], () =>
    jose.jwtVerify(tamper(realm.accessToken), realm.jwks, verifyOptions(realm)),
  );

  for (const other of realms) {
    if (other === realm) continue;
    // A verifier set up for this realm, handed another realm's token: refused by the algorithm
    // allow-list when the algorithms differ, else because this realm's JWKS lacks the kid.
    const expected = other.alg === realm.alg ? 'ERR_JWKS_NO_MATCHING_KEY' : 'ERR_JOSE_ALG_NOT_ALLOWED';
    await expectRefused(realm, `token of realm ${other.name} (${other.alg}) refused`, [expected], () =>
      jose.jwtVerify(other.accessToken, realm.jwks, verifyOptions(realm)),
    );
  }

  await check(realm, 'userinfo (openid-client fetchUserInfo, sub checked)', async () => {
    if (!realm.claims) throw new Error('skipped: the token did not verify');
    const info = await client.fetchUserInfo(realm.config, realm.accessToken, realm.claims.sub);
    if (info.preferred_username !== realm.clientId) throw new Error(`preferred_username ${info.preferred_username}`);
    return `sub ${info.sub}, preferred_username ${info.preferred_username}`;
  });

  await check(realm, 'introspection (openid-client tokenIntrospection)', async () => {
    const info = await client.tokenIntrospection(realm.config, realm.accessToken);
    if (info.active !== true) throw new Error(`active ${info.active}`);
    if (info.iss !== realm.issuer || info.sub !== realm.claims?.sub) throw new Error(`iss ${info.iss}, sub ${info.sub}`);
    return 'active';
  });

  await check(realm, 'client_credentials (openid-client, client_secret_basic) → jwtVerify', async () => {
    const response = await client.clientCredentialsGrant(realm.config);
    const { payload } = await jose.jwtVerify(response.access_token, realm.jwks, verifyOptions(realm));
    if (payload.azp !== realm.clientId) throw new Error(`azp ${payload.azp}`);
    return `token_type ${response.token_type}, expires_in ${response.expires_in}`;
  });
}

console.log(failures === 0 ? `\nall checks passed (${realms.length} realms)` : `\n${failures} check(s) FAILED`);
process.exit(failures === 0 ? 0 : 1);
