#!/usr/bin/python3
"""What botocore (Debian's python3-botocore, an independent implementation of the
AWS credential chain) resolves in this process's environment, for
spec/integration/credentials/precedence_spec.lua.

Prints one JSON object: {"method": botocore's name of the provider that won, "key": the
access key id} ("key" only for sources that need no STS call: botocore defers
those), {"method": null} when no provider has credentials, or {"error": the
exception's class name} when resolution raised.
"""
import json

import botocore.session

# Sources whose keys come without an STS or SSO call.
IMMEDIATE = {"env", "shared-credentials-file", "config-file", "custom-process", "container-role", "iam-role"}

try:
    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        print(json.dumps({"method": None}))
    else:
        out = {"method": credentials.method}
        if credentials.method in IMMEDIATE:
            out["key"] = credentials.get_frozen_credentials().access_key
        print(json.dumps(out))
except Exception as e:  # the class name is the answer
    print(json.dumps({"error": type(e).__name__}))
