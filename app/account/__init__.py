"""Your account, on the apex: name, password, e-mail address and sessions
(``views``). The sign-in itself and the rules behind each change are
identity's (``app.auth``)."""
