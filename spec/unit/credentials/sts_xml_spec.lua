-- The strict XML reader of STS answers: good answers as AWS writes them, entities and
-- namespaces, and every malformed shape refused without quoting the document.
local sts_xml = require("dynamodb_stream.credentials.sts_xml")
local timestamp = require("dynamodb_stream.credentials.timestamp")

local NS = "https://sts.amazonaws.com/doc/2011-06-15/"
local SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
local TOKEN = "FQoGZXIvYXdzEPT//////////wEXAMPLEtOkEn"

-- An AssumeRoleResponse as STS writes it (fields replaceable).
local function answer(fields)
  fields = fields or {}
  local function f(name, default)
    if fields[name] == false then return "" end
    return fields[name] or default
  end
  return '<?xml version="1.0" encoding="UTF-8"?>\n'
    .. '<AssumeRoleResponse xmlns="' .. NS .. '">\n'
    .. '  <AssumeRoleResult>\n'
    .. '    <Credentials>\n'
    .. f("AccessKeyId", '      <AccessKeyId>ASIAEXAMPLE123</AccessKeyId>\n')
    .. f("SecretAccessKey", '      <SecretAccessKey>' .. SECRET .. '</SecretAccessKey>\n')
    .. f("SessionToken", '      <SessionToken>' .. TOKEN .. '</SessionToken>\n')
    .. f("Expiration", '      <Expiration>2026-09-01T13:00:00Z</Expiration>\n')
    .. '    </Credentials>\n'
    .. '    <AssumedRoleUser>\n'
    .. '      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s3-access-example</AssumedRoleId>\n'
    .. '      <Arn>arn:aws:sts::111122223333:assumed-role/Deploy/s3-access-example</Arn>\n'
    .. '    </AssumedRoleUser>\n'
    .. '    <PackedPolicySize>6</PackedPolicySize>\n'
    .. '  </AssumeRoleResult>\n'
    .. '  <ResponseMetadata>\n'
    .. '    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n'
    .. '  </ResponseMetadata>\n'
    .. '</AssumeRoleResponse>\n'
end

local function refused(text, action)
  local kind, why = sts_xml.read(text, action or "AssumeRole")
  assert.is_nil(kind, "accepted: " .. tostring(text):sub(1, 200))
  assert.is_string(why)
  assert.is_nil(why:find(SECRET, 1, true), "the reason quotes the secret: " .. why)
  assert.is_nil(why:find(TOKEN, 1, true), "the reason quotes the token: " .. why)
  assert.is_nil(why:find("wJalrX", 1, true), "the reason quotes part of the secret: " .. why)
  return why
end

describe("credentials.sts_xml", function()
  describe("reads", function()
    it("an AssumeRoleResponse as STS writes it", function()
      local kind, creds = sts_xml.read(answer(), "AssumeRole")
      assert.equals("credentials", kind)
      assert.equals("ASIAEXAMPLE123", creds.access_key_id)
      assert.equals(SECRET, creds.secret_access_key)
      assert.equals(TOKEN, creds.session_token)
      assert.equals(timestamp.parse("2026-09-01T13:00:00Z"), creds.expiration)
      assert.equals("arn:aws:sts::111122223333:assumed-role/Deploy/s3-access-example", creds.assumed_role_arn)
      assert.equals("111122223333", creds.account_id)
    end)

    it("an AssumeRoleWithWebIdentityResponse with its extra fields, and no AssumedRoleUser", function()
      local text = '<AssumeRoleWithWebIdentityResponse xmlns="' .. NS .. '"><AssumeRoleWithWebIdentityResult>'
        .. '<SubjectFromWebIdentityToken>system:serviceaccount:a:b</SubjectFromWebIdentityToken>'
        .. '<Audience>sts.amazonaws.com</Audience><Provider>arn:aws:iam::1:oidc-provider/x</Provider>'
        .. '<Credentials><SessionToken>t</SessionToken><SecretAccessKey>s</SecretAccessKey>'
        .. '<Expiration>2026-09-01T13:00:00.123+02:00</Expiration><AccessKeyId>ASIA2</AccessKeyId></Credentials>'
        .. '</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>'
      local kind, creds = sts_xml.read(text, "AssumeRoleWithWebIdentity")
      assert.equals("credentials", kind)
      assert.same({ "ASIA2", "s", "t" }, { creds.access_key_id, creds.secret_access_key, creds.session_token })
      assert.equals(timestamp.parse("2026-09-01T11:00:00.123Z"), creds.expiration)
      assert.is_nil(creds.assumed_role_arn)
    end)

    it("prefixed namespaces, a BOM, comments and CDATA", function()
      local text = "\239\187\191<?xml version='1.0'?><!-- before -->\n"
        .. '<s:AssumeRoleResponse xmlns:s="' .. NS .. '"><s:AssumeRoleResult><s:Credentials>'
        .. '<s:AccessKeyId>AK<!-- in -->IA</s:AccessKeyId><s:SecretAccessKey><![CDATA[a<b>&amp;]]></s:SecretAccessKey>'
        .. '<s:SessionToken>t</s:SessionToken><s:Expiration>2026-09-01T13:00:00Z</s:Expiration>'
        .. '</s:Credentials></s:AssumeRoleResult></s:AssumeRoleResponse><!-- after -->\n'
      local kind, creds = sts_xml.read(text, "AssumeRole")
      assert.equals("credentials", kind)
      assert.equals("AKIA", creds.access_key_id)
      assert.equals("a<b>&amp;", creds.secret_access_key)
      local root = sts_xml.parse(text)
      assert.equals("AssumeRoleResponse", root.name)
      assert.equals(NS, root.ns)
      assert.equals(NS, root.children[1].children[1].ns)
    end)

    it("the predefined entities and character references", function()
      local kind, creds = sts_xml.read(answer({
        SecretAccessKey = "<SecretAccessKey>&amp;&lt;&gt;&quot;&apos;&#38;&#x26;&#x2F;&#8364;&#x1F600;</SecretAccessKey>",
      }), "AssumeRole")
      assert.equals("credentials", kind)
      assert.equals("&<>\"'&&/\226\130\172\240\159\152\128", creds.secret_access_key)
    end)

    it("attributes, with entities and either quote", function()
      local root = assert(sts_xml.parse([[<a x="1 &lt; 2" y='say "hi"' xmlns:p="urn:p"><p:b p:z="&#65;"/></a>]]))
      assert.same({ x = "1 < 2", y = 'say "hi"', ["xmlns:p"] = "urn:p" }, root.attrs)
      assert.equals("b", root.children[1].name)
      assert.equals("urn:p", root.children[1].ns)
      assert.equals("A", root.children[1].attrs["p:z"])
    end)

    it("an ErrorResponse: code, message, type and request id", function()
      local kind, err = sts_xml.read('<ErrorResponse xmlns="' .. NS .. '">\n  <Error>\n    <Type>Sender</Type>\n'
        .. '    <Code>AccessDenied</Code>\n    <Message>User: arn:aws:iam::1:user/x is not authorized &amp; &lt;denied&gt;'
        .. '</Message>\n  </Error>\n  <RequestId>r-1</RequestId>\n</ErrorResponse>', "AssumeRole")
      assert.equals("error", kind)
      assert.same({ code = "AccessDenied", type = "Sender", request_id = "r-1",
        message = "User: arn:aws:iam::1:user/x is not authorized & <denied>" }, err)
    end)

    it("an ErrorResponse whatever the action, and with only a Code", function()
      local kind, err = sts_xml.read("<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>",
        "AssumeRoleWithWebIdentity")
      assert.equals("error", kind)
      assert.equals("Throttling", err.code)
      assert.is_nil(err.message)
    end)
  end)

  describe("refuses", function()
    it("every truncation of a good answer, quoting none of it", function()
      local text = answer()
      assert.equals("credentials", (sts_xml.read(text, "AssumeRole")))
      -- The document ends with ">\n": any shorter prefix lacks the root's end.
      for n = 0, #text - 2 do refused(text:sub(1, n)) end
    end)

    it("an HTML page, JSON, plain text and a non-string", function()
      assert.matches("root element is <html>", refused("<!-- x --><html><body><p>Sign in</p></body></html>"))
      assert.matches("DOCTYPE", refused("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"))
      assert.matches("not XML", refused('{"Credentials":{"SecretAccessKey":"' .. SECRET .. '"}}'))
      refused("Service Unavailable")
      assert.matches("not a string", refused(nil))
      assert.matches("empty", refused(""))
      assert.matches("no root element", refused("   \n "))
    end)

    it("the other action's answer and a root in a foreign namespace", function()
      assert.matches("not <AssumeRoleWithWebIdentityResponse>", refused(answer(), "AssumeRoleWithWebIdentity"))
      assert.matches("namespace", refused((answer():gsub(NS:gsub("%p", "%%%0"), "urn:evil"))))
    end)

    it("a DOCTYPE (no entity expansion) and a processing instruction", function()
      local bomb = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' .. SECRET .. '">]><r>&a;</r>'
      assert.matches("DOCTYPE", refused(bomb))
      assert.matches("processing instruction", refused('<r><?php echo 1 ?></r>'))
      assert.matches("XML declaration", refused('<?xml encoding="x"?><r/>'))
      assert.matches("XML declaration", refused('<?xml version="1.0"'))
    end)

    it("unknown entities, a bare &, and references to no character", function()
      assert.matches("unknown entity &nbsp;", refused(answer({ SessionToken = "<SessionToken>a&nbsp;b</SessionToken>" })))
      assert.matches("starts no entity", refused(answer({ SessionToken = "<SessionToken>a & b</SessionToken>" })))
      assert.matches("starts no entity", refused(answer({ SessionToken = "<SessionToken>a&amp b</SessionToken>" })))
      for _, ref in ipairs({ "&#0;", "&#x0;", "&#xD800;", "&#x110000;", "&#99999999999;", "&#X41;", "&#x;" }) do
        refused(answer({ SessionToken = "<SessionToken>a" .. ref .. "</SessionToken>" }))
      end
    end)

    it("control characters", function()
      assert.matches("control character", refused(answer({ SessionToken = "<SessionToken>a\0b</SessionToken>" })))
      assert.matches("control character", refused(answer({ SessionToken = "<SessionToken>a\27b</SessionToken>" })))
    end)

    it("broken structure: mismatched or stray end tags, a second root, text outside, mixed content", function()
      assert.matches("</a> closes <b>", refused("<a><b></a></b>"))
      assert.matches("no element open", refused("</a>"))
      assert.matches("second root", refused("<a/><a/>"))
      assert.matches("text after", refused("<a/>junk"))
      assert.matches("text before", refused("junk<a/>"))
      assert.matches("text beside", refused(answer({ SessionToken = "<SessionToken>t</SessionToken>x" })))
      assert.matches("malformed tag", refused("<1a/>"))
      assert.matches("malformed start tag", refused('<a b></a>'))
      assert.matches("malformed end tag", refused('<a></a b>'))
      assert.matches("CDATA section outside", refused("<![CDATA[x]]><a/>"))
    end)

    it("bad attributes and namespaces", function()
      assert.matches("twice in one tag", refused('<a x="1" x="2"/>'))
      assert.matches("'<' inside an attribute", refused('<a x="<"/>'))
      assert.matches("prefix p is not declared", refused("<p:a/>"))
      assert.matches("empty namespace", refused('<a xmlns:p=""/>'))
      assert.matches("malformed tag", refused("<p:/>"))
    end)

    it("each missing, repeated, empty or nested credential field", function()
      for _, name in ipairs({ "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration" }) do
        assert.matches("no <" .. name .. ">", refused(answer({ [name] = false })))
        assert.matches("<" .. name .. "> is empty", refused(answer({ [name] = "<" .. name .. "> </" .. name .. ">" })))
        assert.matches("<" .. name .. "> twice", refused(answer({ [name] = "<" .. name .. ">x</" .. name .. "><"
          .. name .. ">y</" .. name .. ">" })))
        assert.matches("holds elements", refused(answer({ [name] = "<" .. name .. "><x>1</x></" .. name .. ">" })))
      end
      assert.matches("no <AssumeRoleResult>", refused('<AssumeRoleResponse xmlns="' .. NS .. '"/>'))
      assert.matches("no <Credentials>", refused("<AssumeRoleResponse><AssumeRoleResult/></AssumeRoleResponse>"))
    end)

    it("an Expiration that is no timestamp", function()
      assert.matches("Expiration> is not", refused(answer({ Expiration = "<Expiration>tomorrow</Expiration>" })))
      assert.matches("Expiration> is not", refused(answer({ Expiration = "<Expiration>2026-13-01T00:00:00Z</Expiration>" })))
    end)

    it("an ErrorResponse without a usable Code", function()
      assert.matches("no <Error>", refused("<ErrorResponse><RequestId>1</RequestId></ErrorResponse>"))
      assert.matches("no <Code>", refused("<ErrorResponse><Error><Message>m</Message></Error></ErrorResponse>"))
      assert.matches("not an error code", refused("<ErrorResponse><Error><Code>Access Denied!</Code></Error></ErrorResponse>"))
    end)

    it("too deep and too large documents", function()
      local deep = ("<a>"):rep(sts_xml.MAX_DEPTH + 1) .. ("</a>"):rep(sts_xml.MAX_DEPTH + 1)
      assert.matches("nested deeper", refused(deep))
      local ok = ("<a>"):rep(sts_xml.MAX_DEPTH) .. ("</a>"):rep(sts_xml.MAX_DEPTH)
      assert.is_table(sts_xml.parse(ok))
      assert.matches("larger than", refused("<a>" .. ("x"):rep(sts_xml.MAX_SIZE) .. "</a>"))
    end)
  end)
end)
