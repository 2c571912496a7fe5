// A real OpenID Connect provider for the SSO tests (node-oidc-provider).
//
// Configured by one JSON document in OIDC_PEER_CONFIG (written by the pytest
// fixture, tests/sso/conftest.py):
//   {"port": 0, "issuer": "http://127.0.0.1:PORT", "clients": [...],
//    "users": {"alice": {"email": ..., "name": ..., "groups": [...]}}}
// Prints "READY <port>" once listening. Sign-in is the library's development
// login form (any password; the login names a user of the config); consent
// is granted automatically, as a first-party enterprise IdP does.
import Provider from 'oidc-provider';

const cfg = JSON.parse(process.env.OIDC_PEER_CONFIG);

const configuration = {
  clients: cfg.clients,
  cookies: { keys: ['tenantry-test-peer-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // Claims go into the ID token itself (as Okta's and Entra's groups claims do).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    const user = cfg.users[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: user.email,
          email_verified: true,
          name: user.name,
          groups: user.groups || [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
    await grant.save();
    return grant;
  },
};

const provider = new Provider(cfg.issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
const server = provider.listen(cfg.port, '127.0.0.1', () => {
  console.log(`READY ${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
