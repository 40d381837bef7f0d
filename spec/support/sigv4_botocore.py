#!/usr/bin/python3
"""Independent SigV4 reference for spec/integration/core/sigv4_reference_spec.lua:
signs requests with botocore's SigV4Auth (Debian's python3-botocore) at a frozen clock.

Run with Debian's /usr/bin/python3 (the one that has botocore). Reads
requests from stdin, one field per line, every value hex-encoded so any
bytes survive:

    access_key_id HEX
    secret_access_key HEX
    session_token HEX        (optional)
    region HEX
    service HEX
    method HEX
    url HEX                  e.g. https://streams.dynamodb.eu-west-1.amazonaws.com/
    amz_date HEX             YYYYMMDDTHHMMSSZ, the frozen "now"
    body HEX                 (may be empty)
    header HEX HEX           name, value; repeated
    end

and prints, for each request, one line:

    <Authorization header value>\t<X-Amz-Security-Token sent, or "-">
"""
import datetime
import sys
import types
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def frozen_datetime(amz_date):
    """A stand-in for the datetime module botocore.auth uses, whose
    datetime.utcnow() returns amz_date."""
    now = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")

    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return now

    return types.SimpleNamespace(datetime=Frozen)


def sign(fields, headers):
    creds = Credentials(
        fields["access_key_id"],
        fields["secret_access_key"],
        fields.get("session_token") or None,
    )
    auth = SigV4Auth(creds, fields["service"], fields["region"])
    request = AWSRequest(
        method=fields["method"],
        url=fields["url"],
        data=fields["body"].encode("utf-8", "surrogateescape"),
    )
    for name, value in headers:
        request.headers[name] = value
    with mock.patch.object(botocore.auth, "datetime", frozen_datetime(fields["amz_date"])):
        auth.add_auth(request)
    # The frozen clock really was used (botocore sets X-Amz-Date from it).
    assert request.headers["X-Amz-Date"] == fields["amz_date"], request.headers["X-Amz-Date"]
    token = request.headers.get("X-Amz-Security-Token")
    return request.headers["Authorization"], token


def unhex(h):
    return bytes.fromhex(h).decode("utf-8", "surrogateescape")


def main():
    fields, headers = {}, []
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "end":
            authz, token = sign(fields, headers)
            print("%s\t%s" % (authz, token if token is not None else "-"))
            fields, headers = {}, []
        elif parts[0] == "header":
            headers.append((unhex(parts[1]), unhex(parts[2] if len(parts) > 2 else "")))
        else:
            fields[parts[0]] = unhex(parts[1] if len(parts) > 1 else "")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
