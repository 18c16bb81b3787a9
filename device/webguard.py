"""What `alledge serve` checks before the app sees a request; a refusal is one line of JSON.

- Host: on loopback only a loopback name, so a web page elsewhere cannot reach the server
  through a name that resolves to 127.0.0.1 (DNS rebinding).
- Origin: a POST from another site's page is refused (a form on any page could post here).
- Token, when set (always off loopback): `Authorization: Bearer`, `?token=`, or the cookie
  that opening `/?token=` sets for the page.
- Upload limit: from Content-Length, before the body is read; chunked bodies are refused.
"""
import hmac
import json
from urllib.parse import parse_qs, urlsplit

LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}
COOKIE = "alledge_token"


def guard(app, token, max_upload, loopback):
    """Checks made before the app sees a request; a refusal is one line of JSON."""
    def wsgi(environ, start_response):
        refusal = _refusal(environ, token, max_upload, loopback)
        if refusal is None:
            return app(environ, start_response)
        status, message, headers = refusal
        body = (json.dumps({"error": message}) + "\n").encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))] + headers)
        return [body]
    return wsgi


def _refusal(environ, token, max_upload, loopback):
    host = environ.get("HTTP_HOST", "")
    if loopback and _hostname(host) not in LOOPBACK_NAMES:
        return "403 Forbidden", f"Host {host!r} is not this machine's loopback name", []
    origin = environ.get("HTTP_ORIGIN")
    if origin and origin != "null" and urlsplit(origin).netloc != host:
        return "403 Forbidden", "cross-site request refused", []
    if token is not None:
        given = _given_token(environ)
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            return "401 Unauthorized", ("this server needs its token: open the address it "
                                        "printed at start (…/?token=…)"), []
        if environ.get("PATH_INFO") == "/" and "token=" in environ.get("QUERY_STRING", ""):
            # the page opened from the printed link: keep the token in a cookie for the
            # page's own requests, and drop it from the address bar
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            return "303 See Other", "token accepted", [("Set-Cookie", cookie),
                                                       ("Location", "/")]
    if environ["REQUEST_METHOD"] in ("POST", "PUT", "PATCH"):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return "411 Length Required", "send a Content-Length, not a chunked body", []
        length = environ.get("CONTENT_LENGTH") or "0"  # none and not chunked: no body
        if not length.isdigit():
            return "400 Bad Request", "the Content-Length is not a number", []
        if int(length) > max_upload:
            return ("413 Payload Too Large",
                    f"upload of {int(length)} bytes is over the {max_upload} byte limit", [])
    return None


def _hostname(host):
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _given_token(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer "):].strip()
    query = parse_qs(environ.get("QUERY_STRING", "")).get("token")
    if query:
        return query[0]
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE:
            return value
    return None
