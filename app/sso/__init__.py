"""Single sign-on (OIDC, SAML): connections per organization, the self-serve
setup portal, the sign-in flow, just-in-time provisioning and SSO
enforcement. The protocol seam is ``app.sso.registry``; the shared sign-in is
``app.sso.services.complete_sso_sign_in``."""
