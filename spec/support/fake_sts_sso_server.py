#!/usr/bin/python3
"""A fake STS, IAM Identity Center portal and SSO-OIDC on one loopback port (for
spec/integration/credentials/sts_spec.lua and sso_spec.lua).

    fake_sts_sso_server.py [--lifetime S]

Prints "pid=<pid> http=<port>" once it listens on 127.0.0.1, then serves until
its parent goes or --lifetime seconds (default 120) pass. Run it with Debian's
/usr/bin/python3: botocore verifies the signatures.

STS (query protocol, POST / with a form body, Version=2011-06-15, dispatch on
Action), answers in XML with Content-Type text/xml:
  AssumeRole: a SigV4 signature with scope <date>/<region>/sts/aws4_request,
    recomputed with botocore's SigV4Auth against the source keys registered
    (an unknown key is InvalidClientTokenId 403, a wrong signature
    SignatureDoesNotMatch 403); the region must be the Host's
    (sts.<region>.amazonaws.com; us-east-1 for sts.amazonaws.com; any region for
    other hosts, recorded); a temporary source key needs X-Amz-Security-Token
    equal to its token, a permanent one must not send one.
  AssumeRoleWithWebIdentity: no Authorization and no X-Amz-Security-Token
    (else 400 UnexpectedSignature), WebIdentityToken equal to the current
    contents of the token file (trailing whitespace dropped; else 400
    InvalidIdentityToken).
  Both: RoleArn required; RoleSessionName 2-64 of [\\w+=,.@-]; DurationSeconds
    900-43200 (3600 when absent), ValidationError 400 otherwise; ExternalId
    must equal "external_id" when that is set (else AccessDenied 403); each
    form value strictly percent-encoded (unreserved characters only, else
    MalformedQueryString 400). Every issued credential gets a fresh AccessKeyId,
    expiring DurationSeconds after the clock.
SSO portal: GET /federation/credentials?account_id=&role_name= with header
  x-amz-sso_bearer_token: an unknown or expired token is 401
  (x-amzn-ErrorType: UnauthorizedException, {"message": ...}); a missing
  parameter 400 InvalidRequestException; an (account, role) not in "sso_roles"
  (when set) 403 ForbiddenException; else 200 {"roleCredentials": {...,
  "expiration": epoch milliseconds}} (one hour after the clock).
SSO-OIDC: POST /token, JSON {clientId, clientSecret, grantType: refresh_token,
  refreshToken}: an unknown client or wrong secret 401 invalid_client, a wrong
  or revoked refresh token 400 invalid_grant (x-amzn-ErrorType
  InvalidGrantException), else 200 {accessToken, tokenType, expiresIn,
  refreshToken when "oidc_rotate"}; the new access token is valid at the portal
  until clock + expiresIn.

Control (JSON, not recorded):
  POST /_control/set    an object whose keys replace those of the state:
      clock (epoch seconds the Expirations count from; default: real time),
      source_keys {akid: {"secret": s, "token": t or null}}, token_file,
      external_id, sts_mode, sso_mode, oidc_mode, mode_count (how many answers
      the modes apply to; null: all), mode_status (the status of "html"),
      hang_seconds, sso_tokens {token: expiry epoch or null}, sso_roles
      [[account, role], ...] or null, oidc_clients {id: {"secret": s,
      "refresh_token": r}}, oidc_expires_in, oidc_rotate
  POST /_control/reset  the state back to its start
  GET  /_control/state  {"requests": [{service, method, path, query, headers
      (lower-case name -> value, Host included), body, scope_region}],
      "issued": [{access_key_id, secret_access_key, session_token, expiration,
      via}], "sso_tokens": ..., "oidc_clients": ...}
Modes: sts_mode AccessDenied | InvalidIdentityToken | ExpiredTokenException |
  Throttling | InternalFailure | RegionDisabledException | IDPCommunicationError (an ErrorResponse with
  the real status) | leaky (AccessDenied whose Message quotes the request's
  secrets) | malformed (a success answer cut in the middle of the secret) |
  html (an HTML page, status mode_status, default 200) | wrong_root (the other
  action's answer) | empty | hang (no answer for hang_seconds, default 2);
  sso_mode and oidc_mode: throttle (429 TooManyRequestsException) | html |
  hang | garbage (200 with a body that is no JSON object). A mode applies to
  the next mode_count requests of its service, then the service answers normally.
"""
import copy
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from unittest import mock
from xml.sax.saxutils import escape

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import test_server
from sigv4_botocore import frozen_datetime

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
STS_ERROR_STATUS = {
    "AccessDenied": 403, "InvalidIdentityToken": 400, "ExpiredTokenException": 400,
    "Throttling": 400, "InternalFailure": 500, "RegionDisabledException": 403, "IDPCommunicationError": 400,
}
SESSION_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")
FORM_PAIR = re.compile(r"^[A-Za-z0-9._~%-]+=[A-Za-z0-9._~%-]*$")
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")

DEFAULTS = {
    "clock": None, "source_keys": {}, "token_file": None, "external_id": None,
    "sts_mode": None, "sso_mode": None, "oidc_mode": None, "mode_count": None,
    "mode_status": 200, "hang_seconds": 2, "sso_tokens": {}, "sso_roles": None,
    "oidc_clients": {}, "oidc_expires_in": 28800, "oidc_rotate": False,
}

lock = threading.Lock()
state = {}
requests = []
issued = []
counter = [0]
mode_left = {}


def reset():
    state.clear()
    state.update(copy.deepcopy(DEFAULTS))
    del requests[:]
    del issued[:]
    mode_left.clear()


reset()


def now():
    return state["clock"] if state["clock"] is not None else time.time()


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def fresh(prefix):
    counter[0] += 1
    return "%s%012d" % (prefix, counter[0])


def take_mode(service):
    """The mode for this request of `service` (None once mode_count is spent)."""
    mode = state[service + "_mode"]
    if mode is None:
        return None
    if state["mode_count"] is not None:
        left = mode_left.setdefault(service, state["mode_count"])
        if left <= 0:
            return None
        mode_left[service] = left - 1
    return mode


class Answer(Exception):
    """An answer decided early: status, body, content type, extra headers."""

    def __init__(self, status, body, content_type="text/xml", headers=None):
        Exception.__init__(self, status)
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or {}


class Hang(Exception):
    pass


def sts_error(code, message, status=None):
    status = status or STS_ERROR_STATUS.get(code, 400)
    kind = "Receiver" if status >= 500 else "Sender"
    body = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
            '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
            % (STS_NS, kind, code, escape(message), uuid.uuid4()))
    return Answer(status, body)


def sts_success(action, creds, session_name):
    arn = "arn:aws:sts::111122223333:assumed-role/Role/" + session_name
    extra = ""
    if action == "AssumeRoleWithWebIdentity":
        extra = ("    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n"
                 "    <Provider>oidc.eks.example</Provider>\n    <Audience>sts.amazonaws.com</Audience>\n")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<%sResponse xmlns="%s">\n  <%sResult>\n%s    <Credentials>\n'
            '      <AccessKeyId>%s</AccessKeyId>\n      <SecretAccessKey>%s</SecretAccessKey>\n'
            '      <SessionToken>%s</SessionToken>\n      <Expiration>%s</Expiration>\n'
            '    </Credentials>\n    <AssumedRoleUser>\n      <AssumedRoleId>AROAEXAMPLE:%s</AssumedRoleId>\n'
            '      <Arn>%s</Arn>\n    </AssumedRoleUser>\n    <PackedPolicySize>6</PackedPolicySize>\n'
            '  </%sResult>\n  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
            '</%sResponse>\n'
            % (action, STS_NS, action, extra, creds["access_key_id"], escape(creds["secret_access_key"]),
               escape(creds["session_token"]), iso(creds["expiration"]), session_name, arn, action,
               uuid.uuid4(), action))


def host_region(host):
    """The region an AWS STS host implies, or None for any other host."""
    host = host.split(":")[0]
    if host == "sts.amazonaws.com":
        return "us-east-1"
    m = re.match(r"^sts\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$", host)
    return m.group(1) if m else None


signing_lock = threading.Lock()  # botocore.auth's datetime is patched while signing


def verify_sigv4(headers, path, body, record):
    auth = headers.get("authorization")
    if not auth:
        raise sts_error("MissingAuthenticationToken", "Request is missing Authentication Token", 403)
    m = AUTHORIZATION.match(auth)
    if not m:
        raise sts_error("IncompleteSignature", "Authorization header is malformed", 400)
    akid, date, region, service, signed, signature = m.groups()
    record["scope_region"] = region
    if service != "sts":
        raise sts_error("SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'.", 403)
    expected = host_region(headers.get("host", ""))
    if expected is not None and region != expected:
        raise sts_error("SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '%s'."
                        % region, 403)
    amz_date = headers.get("x-amz-date", "")
    if not re.match(r"^\d{8}T\d{6}Z$", amz_date) or amz_date[:8] != date:
        raise sts_error("IncompleteSignature", "X-Amz-Date is missing or differs from the scope's date", 400)
    key = state["source_keys"].get(akid)
    if key is None:
        raise sts_error("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    token = key.get("token")
    if headers.get("x-amz-security-token") != token:
        raise sts_error("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    names = signed.split(";")
    for needed in ["host", "x-amz-date"] + (["x-amz-security-token"] if token else []):
        if needed not in names:
            raise sts_error("SignatureDoesNotMatch", "%s is not signed" % needed, 403)
    request = AWSRequest(method="POST", url="http://" + headers["host"] + path, data=body)
    for name in names:
        if name not in headers:
            raise sts_error("SignatureDoesNotMatch", "signed header %s is absent" % name, 403)
        request.headers[name] = headers[name]
    with signing_lock, mock.patch.object(botocore.auth, "datetime", frozen_datetime(amz_date)):
        SigV4Auth(Credentials(akid, key["secret"], token), "sts", region).add_auth(request)
    if request.headers["Authorization"] != auth:
        raise sts_error("SignatureDoesNotMatch", "The request signature we calculated does not match the "
                        "signature you provided.", 403)


def issue(via, duration):
    creds = {"access_key_id": fresh("ASIAFAKE"), "secret_access_key": secrets.token_urlsafe(30),
             "session_token": "FQoGZXIvYXdzE" + secrets.token_urlsafe(60), "expiration": now() + duration,
             "via": via}
    issued.append(creds)
    return creds


def sts(headers, path, body, record):
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise sts_error("InvalidParameterValue", "Content-Type must be application/x-www-form-urlencoded")
    text = body.decode("utf-8", "replace")
    pairs = text.split("&") if text else []
    if not pairs or not all(FORM_PAIR.match(p) for p in pairs):
        raise sts_error("MalformedQueryString", "a form value is not strictly percent-encoded")
    params = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    if len(params) != len(pairs):
        raise sts_error("MalformedQueryString", "a parameter is given twice")
    if params.get("Version") != "2011-06-15":
        raise sts_error("InvalidAction", "Could not find operation %s for version %s"
                        % (params.get("Action"), params.get("Version")))
    action = params.get("Action")
    if action == "AssumeRole":
        verify_sigv4(headers, path, body, record)
    elif action == "AssumeRoleWithWebIdentity":
        if "authorization" in headers or "x-amz-security-token" in headers:
            raise sts_error("UnexpectedSignature", "AssumeRoleWithWebIdentity must not be signed")
        expected = None
        if state["token_file"]:
            with open(state["token_file"]) as f:
                expected = f.read().rstrip()
        if not expected or params.get("WebIdentityToken") != expected:
            raise sts_error("InvalidIdentityToken", "The web identity token that was passed could not be validated.")
    else:
        raise sts_error("InvalidAction", "Could not find operation %s for version 2011-06-15" % action)
    if not params.get("RoleArn", "").startswith("arn:"):
        raise sts_error("ValidationError", "1 validation error detected: Value at 'roleArn' failed to satisfy constraint")
    session = params.get("RoleSessionName", "")
    if not SESSION_NAME.match(session):
        raise sts_error("ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to "
                        "satisfy constraint")
    duration = params.get("DurationSeconds", "3600")
    if not re.match(r"^\d+$", duration) or not 900 <= int(duration) <= 43200:
        raise sts_error("ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to "
                        "satisfy constraint")
    if state["external_id"] is not None and params.get("ExternalId") != state["external_id"]:
        raise sts_error("AccessDenied", "User is not authorized to perform: sts:AssumeRole (ExternalId)")
    mode = take_mode("sts")
    if mode in STS_ERROR_STATUS:
        raise sts_error(mode, "fake %s for %s" % (mode, params["RoleArn"]))
    if mode == "leaky":
        raise sts_error("AccessDenied", "refused: token=%s security-token=%s"
                        % (params.get("WebIdentityToken"), headers.get("x-amz-security-token")))
    if mode == "hang":
        raise Hang()
    if mode == "empty":
        raise Answer(200, "")
    if mode == "html":
        raise Answer(state["mode_status"], "<!DOCTYPE html><html><body><h1>Sign in to the network</h1>"
                     "</body></html>", "text/html")
    creds = issue(action, int(duration))
    answer = sts_success(action, creds, session)
    if mode == "malformed":
        answer = answer[:answer.index("<SecretAccessKey>") + len("<SecretAccessKey>") + 10]
    elif mode == "wrong_root":
        other = "AssumeRoleWithWebIdentity" if action == "AssumeRole" else "AssumeRole"
        answer = sts_success(other, creds, session)
    raise Answer(200, answer)


def json_answer(status, obj, error_type=None):
    headers = {"x-amzn-ErrorType": error_type} if error_type else {}
    return Answer(status, json.dumps(obj), "application/json", headers)


def json_mode(service):
    mode = take_mode(service)
    if mode == "throttle":
        raise json_answer(429, {"message": "Too many requests"}, "TooManyRequestsException")
    if mode == "html":
        raise Answer(502, "<html><body>Bad Gateway</body></html>", "text/html")
    if mode == "garbage":
        raise Answer(200, "[1, 2", "application/json")
    if mode == "hang":
        raise Hang()


def sso(headers, query):
    params = dict(urllib.parse.parse_qsl(query))
    account, role = params.get("account_id"), params.get("role_name")
    if not account or not role:
        raise json_answer(400, {"message": "account_id and role_name are required"}, "InvalidRequestException")
    json_mode("sso")
    token = headers.get("x-amz-sso_bearer_token")
    expiry = state["sso_tokens"].get(token, False) if token else False
    if expiry is False or (expiry is not None and expiry <= now()):
        raise json_answer(401, {"message": "Session token not found or invalid"}, "UnauthorizedException")
    if state["sso_roles"] is not None and [account, role] not in state["sso_roles"]:
        raise json_answer(403, {"message": "No access"}, "ForbiddenException")
    creds = issue("GetRoleCredentials", 3600)
    raise json_answer(200, {"roleCredentials": {
        "accessKeyId": creds["access_key_id"], "secretAccessKey": creds["secret_access_key"],
        "sessionToken": creds["session_token"], "expiration": int(creds["expiration"] * 1000)}})


def oidc(body):
    try:
        request = json.loads(body.decode("utf-8"))
    except ValueError:
        request = None
    if not isinstance(request, dict):
        raise json_answer(400, {"error": "invalid_request"}, "InvalidRequestException")
    json_mode("oidc")
    if request.get("grantType") != "refresh_token":
        raise json_answer(400, {"error": "unsupported_grant_type"}, "UnsupportedGrantTypeException")
    client = state["oidc_clients"].get(request.get("clientId"))
    if client is None or client.get("secret") != request.get("clientSecret"):
        raise json_answer(401, {"error": "invalid_client", "error_description": "Invalid client"},
                          "InvalidClientException")
    if not client.get("refresh_token") or client["refresh_token"] != request.get("refreshToken"):
        raise json_answer(400, {"error": "invalid_grant", "error_description": "Invalid refresh token provided"},
                          "InvalidGrantException")
    expires_in = state["oidc_expires_in"]
    token = fresh("aoa-")
    state["sso_tokens"][token] = now() + expires_in
    answer = {"accessToken": token, "tokenType": "Bearer", "expiresIn": expires_in}
    if state["oidc_rotate"]:
        client["refresh_token"] = answer["refreshToken"] = fresh("aor-")
    raise json_answer(200, answer)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, answer):
        data = answer.body.encode("utf-8") if isinstance(answer.body, str) else answer.body
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, 1 << 20)) if length else b""

    def _handle(self):
        url = urllib.parse.urlsplit(self.path)
        body = self._body()
        if url.path.startswith("/_control/"):
            return self._control(url.path, body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        service = {"/federation/credentials": "sso", "/token": "oidc"}.get(url.path, "sts")
        record = {"service": service, "method": self.command, "path": url.path, "query": url.query,
                  "headers": headers, "body": body.decode("utf-8", "replace")}
        hang = None
        try:
            with lock:
                requests.append(record)
                if service == "sso" and self.command == "GET":
                    sso(headers, url.query)
                elif service == "oidc" and self.command == "POST":
                    oidc(body)
                elif service == "sts" and self.command == "POST":
                    sts(headers, url.path, body, record)
                raise Answer(405, "method not allowed", "text/plain")
        except Answer as answer:
            return self._send(answer)
        except Hang:
            hang = state["hang_seconds"]
        time.sleep(hang)

    def _control(self, path, body):
        with lock:
            if path == "/_control/set" and self.command == "POST":
                changes = json.loads(body.decode("utf-8"))
                unknown = set(changes) - set(DEFAULTS)
                if unknown:
                    return self._send(Answer(400, "unknown keys: %s" % sorted(unknown), "text/plain"))
                state.update(changes)
                mode_left.clear()
                return self._send(Answer(200, "{}", "application/json"))
            if path == "/_control/reset" and self.command == "POST":
                reset()
                return self._send(Answer(200, "{}", "application/json"))
            if path == "/_control/state" and self.command == "GET":
                return self._send(Answer(200, json.dumps({
                    "requests": requests, "issued": issued, "sso_tokens": state["sso_tokens"],
                    "oidc_clients": state["oidc_clients"]}), "application/json"))
        return self._send(Answer(404, "no such control", "text/plain"))

    do_GET = do_POST = do_PUT = do_DELETE = _handle


if __name__ == "__main__":
    test_server.run(test_server.QuietHTTPServer, Handler, 120)
