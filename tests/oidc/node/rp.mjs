// A relying party on node's openid-client, driven over stdin/stdout by test_relying_parties.py:
// it prints {"step": ..., ...} lines and reads one JSON line back whenever a browser must act.
import * as client from 'openid-client'
import readline from 'node:readline'

const [issuer, clientId, clientSecret, redirectUri, postLogoutUri] = process.argv.slice(2)
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const say = (data) => process.stdout.write(JSON.stringify(data) + '\n')
const hear = async () => JSON.parse((await lines.next()).value)

try {
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(clientSecret), {
    execute: [client.allowInsecureRequests], // the test server is plain http on 127.0.0.1
  })
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })
  say({ step: 'authorize', url: url.href })
  const { callback } = await hear()
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: postLogoutUri,
    state: 'bye',
  })
  say({ step: 'tokens', claims, userinfo, refreshed: Boolean(refreshed.access_token && refreshed.refresh_token),
        rotated: refreshed.refresh_token !== tokens.refresh_token, refreshedClaims: refreshed.claims() ?? null,
        logout: logout.href })
  await hear()
  const device = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' })
  say({ step: 'device', user_code: device.user_code, verification_uri: device.verification_uri })
  await hear()
  const deviceTokens = await client.pollDeviceAuthorizationGrant(config, device)
  say({ step: 'device-tokens', sub: deviceTokens.claims()?.sub ?? null, access: Boolean(deviceTokens.access_token) })
  const machine = await client.clientCredentialsGrant(config, { scope: 'profile' })
  say({ step: 'client-credentials', access: Boolean(machine.access_token), scope: machine.scope ?? null,
        expiresIn: machine.expires_in ?? null, refresh: machine.refresh_token ?? null })
} catch (error) {
  say({ step: 'error', name: error.name, code: error.code, message: error.message, cause: String(error.cause ?? '') })
  process.exitCode = 1
}
process.exit()
