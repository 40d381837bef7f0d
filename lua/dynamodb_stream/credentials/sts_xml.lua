--- A small, strict XML reader for exactly the answers STS gives to the credential sources:
-- `AssumeRoleResponse`, `AssumeRoleWithWebIdentityResponse` and `ErrorResponse`.
--
-- It knows elements, attributes, namespaces, the five predefined entities and character
-- references, comments and CDATA; anything else (a DOCTYPE, a processing instruction after the
-- declaration, text beside child elements, a second root, a cut-off document) is refused.
-- Its reasons never quote the document's text, which may hold a secret.
-- @module dynamodb_stream.credentials.sts_xml

local timestamp = require("dynamodb_stream.credentials.timestamp")

local M = {
  NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/",
  MAX_DEPTH = 32,
  MAX_SIZE = 256 * 1024,
}

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

local floor = math.floor

-- UTF-8 of a code point (no utf8 library on 5.1 and LuaJIT).
local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return string.char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- XML 1.0's Char production.
local function is_xml_char(cp)
  return cp == 0x9 or cp == 0xA or cp == 0xD or (cp >= 0x20 and cp <= 0xD7FF)
    or (cp >= 0xE000 and cp <= 0xFFFD) or (cp >= 0x10000 and cp <= 0x10FFFF)
end

-- A name as it may be shown in a reason: tag and entity names are markup, not data, but a
-- hostile server chooses them, so they are cut short and stripped to plain characters.
local function shown(name)
  return (name:sub(1, 40):gsub("[^%w_.:-]", "?"))
end

-- Text with its entity and character references replaced, or nil, why.
local function decode(raw)
  if not raw:find("&", 1, true) then return raw end
  local parts, pos = {}, 1
  while true do
    local amp = raw:find("&", pos, true)
    if not amp then
      parts[#parts + 1] = raw:sub(pos)
      return table.concat(parts)
    end
    parts[#parts + 1] = raw:sub(pos, amp - 1)
    local name, after = raw:match("^&([#%w]+);()", amp)
    if not name then return nil, "an '&' that starts no entity" end
    local char = ENTITIES[name]
    if not char then
      local digits = name:match("^#x(%x+)$")
      local cp = digits and #digits <= 8 and tonumber(digits, 16)
      if not digits then
        digits = name:match("^#(%d+)$")
        cp = digits and #digits <= 10 and tonumber(digits)
      end
      if not digits then return nil, "an unknown entity &" .. shown(name) .. ";" end
      if not cp or not is_xml_char(cp) then return nil, "a character reference to no XML character" end
      char = utf8_char(cp)
    end
    parts[#parts + 1] = char
    pos = after
  end
end

-- The attributes of a start tag from pos: attrs, the position after the tag, whether it
-- closed itself; or nil, why.
local function read_attributes(text, pos)
  local attrs = {}
  while true do
    local after = text:match("^%s*/>()", pos)
    if after then return attrs, after, true end
    after = text:match("^%s*>()", pos)
    if after then return attrs, after, false end
    local name, quote, value_at = text:match("^%s+([%a_][%w_.:-]*)%s*=%s*([\"'])()", pos)
    if not name then
      if not text:find(">", pos, true) then return nil, "the document ends inside a tag (cut off?)" end
      return nil, "a malformed start tag"
    end
    local close = text:find(quote, value_at, true)
    if not close then return nil, "the document ends inside an attribute value (cut off?)" end
    local raw = text:sub(value_at, close - 1)
    if raw:find("<", 1, true) then return nil, "a '<' inside an attribute value" end
    if attrs[name] then return nil, "the attribute " .. shown(name) .. " twice in one tag" end
    local value, why = decode(raw)
    if not value then return nil, why end
    attrs[name] = value
    pos = close + 1
  end
end

-- The namespaces in scope inside an element with these attributes, or nil, why.
local function scope_of(attrs, parent_scope)
  local scope
  for name, value in pairs(attrs) do
    local prefix = name == "xmlns" and "" or name:match("^xmlns:(.+)$")
    if prefix then
      if prefix ~= "" and value == "" then return nil, "an empty namespace for the prefix " .. shown(prefix) end
      scope = scope or setmetatable({}, { __index = parent_scope })
      scope[prefix] = value
    end
  end
  return scope or parent_scope
end

-- Ends the element on top of the stack: its text joined and checked.
local function close_element(el)
  local text = table.concat(el.pieces)
  el.pieces = nil
  if #el.children > 0 then
    if text:find("%S") then return nil, "text beside the child elements of <" .. el.name .. ">" end
    el.text = ""
  else
    el.text = text:match("^%s*(.-)%s*$")
  end
  return true
end

local ROOT_SCOPE = { xml = "http://www.w3.org/XML/1998/namespace" }

--- Parses a document into its root element, or `nil, why`.
-- An element is `{ name = local name, ns = namespace URI or nil, attrs = { [qname] = value },
-- children = { element, ... }, text = its text with entities replaced and surrounding
-- whitespace trimmed ("" when it has children) }`.
-- @tparam string text the document
-- @treturn table the root element, or `nil, why` (never quoting the document's text)
function M.parse(text)
  if type(text) ~= "string" then return nil, "the answer is not a string" end
  if text == "" then return nil, "the answer is empty" end
  if #text > M.MAX_SIZE then return nil, "the answer is larger than " .. M.MAX_SIZE .. " bytes" end
  if text:find("[%z\1-\8\11\12\14-\31]") then return nil, "a control character in the document" end
  local pos = text:sub(1, 3) == "\239\187\191" and 4 or 1
  if text:find("^<%?xml", pos) then
    local close = text:find("?>", pos, true)
    if not close then return nil, "the document ends inside the XML declaration (cut off?)" end
    if not text:sub(pos, close + 1):find("^<%?xml%s+version%s*=%s*[\"']1%.%d+[\"']") then
      return nil, "a malformed XML declaration"
    end
    pos = close + 2
  end
  local stack, root = {}, nil
  while true do
    local lt = text:find("<", pos, true)
    local chunk = text:sub(pos, (lt or #text + 1) - 1)
    local top = stack[#stack]
    if top then
      local decoded, why = decode(chunk)
      if not decoded then return nil, why end
      top.pieces[#top.pieces + 1] = decoded
    elseif chunk:find("%S") then
      return nil, root and "text after the root element" or "text before the root element (not XML?)"
    end
    if not lt then break end
    if text:find("^<!%-%-", lt) then
      local close = text:find("-->", lt + 4, true)
      if not close then return nil, "the document ends inside a comment (cut off?)" end
      pos = close + 3
    elseif text:find("^<!%[CDATA%[", lt) then
      local close = text:find("]]>", lt + 9, true)
      if not close then return nil, "the document ends inside a CDATA section (cut off?)" end
      if not top then return nil, "a CDATA section outside the root element" end
      top.pieces[#top.pieces + 1] = text:sub(lt + 9, close - 1)
      pos = close + 3
    elseif text:find("^<[!?]", lt) then
      return nil, "a DOCTYPE or processing instruction, which these answers never hold"
    elseif text:find("^</", lt) then
      local qname, after = text:match("^</([^%s>]*)%s*>()", lt)
      if not qname then
        if not text:find(">", lt, true) then return nil, "the document ends inside an end tag (cut off?)" end
        return nil, "a malformed end tag"
      end
      if not top then return nil, "an end tag </" .. shown(qname) .. "> with no element open" end
      if qname ~= top.qname then
        return nil, "the end tag </" .. shown(qname) .. "> closes <" .. shown(top.qname) .. ">"
      end
      local ok, why = close_element(top)
      if not ok then return nil, why end
      stack[#stack] = nil
      top.qname, top.scope = nil, nil
      if #stack == 0 then root = top end
      pos = after
    else
      if root then return nil, "a second root element" end
      local qname, after = text:match("^<([%a_][%w_.-]*:?[%w_.-]*)()", lt)
      if not qname or qname:sub(-1) == ":" then
        if lt == #text then return nil, "the document ends inside a tag (cut off?)" end
        return nil, "a malformed tag"
      end
      if #stack >= M.MAX_DEPTH then return nil, "elements nested deeper than " .. M.MAX_DEPTH end
      local attrs, tag_end, empty = read_attributes(text, after)
      if not attrs then return nil, tag_end end
      local scope, why = scope_of(attrs, top and top.scope or ROOT_SCOPE)
      if not scope then return nil, why end
      local prefix, name = qname:match("^([^:]+):(.+)$")
      local ns = scope[prefix or ""]
      if prefix and not ns then return nil, "the namespace prefix " .. shown(prefix) .. " is not declared" end
      local el = { name = name or qname, ns = ns ~= "" and ns or nil, attrs = attrs, children = {},
        pieces = {}, qname = qname, scope = scope }
      if top then top.children[#top.children + 1] = el end
      if empty then
        close_element(el)
        el.qname, el.scope = nil, nil
        if not top then root = el end
      else
        stack[#stack + 1] = el
      end
      pos = tag_end
    end
  end
  if #stack > 0 then return nil, "the document ends inside <" .. shown(stack[#stack].qname) .. "> (cut off?)" end
  if not root then return nil, "no root element" end
  return root
end

-- The one child of el named name: the element, or nil, why (absent or repeated).
local function only_child(el, name, required)
  local found
  for _, child in ipairs(el.children) do
    if child.name == name then
      if found then return nil, "<" .. name .. "> twice in <" .. el.name .. ">" end
      found = child
    end
  end
  if not found and required then return nil, "no <" .. name .. "> in <" .. el.name .. ">" end
  return found
end

-- The text of the one leaf child named name; nil, why when required and absent or empty.
local function leaf(el, name, required)
  local child, why = only_child(el, name, required)
  if not child then return nil, why end
  if #child.children > 0 then return nil, "<" .. name .. "> holds elements, not text" end
  if child.text == "" and required then return nil, "<" .. name .. "> is empty" end
  return child.text ~= "" and child.text or nil
end

local CREDENTIAL_FIELDS = { { "access_key_id", "AccessKeyId" }, { "secret_access_key", "SecretAccessKey" },
  { "session_token", "SessionToken" }, { "expiration", "Expiration" } }

-- The credentials of an AssumeRole... root, or nil, why.
local function credentials_of(root, action)
  local result, why = only_child(root, action .. "Result", true)
  if not result then return nil, why end
  local creds
  creds, why = only_child(result, "Credentials", true)
  if not creds then return nil, why end
  local out = {}
  for _, pair in ipairs(CREDENTIAL_FIELDS) do
    local field = pair[1]
    out[field], why = leaf(creds, pair[2], true)
    if not out[field] then return nil, why end
  end
  local expiration = timestamp.parse(out.expiration)
  if not expiration then return nil, "<Expiration> is not an RFC 3339 timestamp" end
  out.expiration = expiration
  local user = only_child(result, "AssumedRoleUser")
  local arn = user and leaf(user, "Arn")
  if arn then
    out.assumed_role_arn = arn
    out.account_id = arn:match("^arn:[^:]*:[^:]*:[^:]*:(%d+):")
  end
  return out
end

-- The fields of an ErrorResponse root, or nil, why.
local function error_of(root)
  local el, why = only_child(root, "Error", true)
  if not el then return nil, why end
  local code
  code, why = leaf(el, "Code", true)
  if not code then return nil, why end
  if #code > 100 or not code:match("^[%w_.:-]+$") then return nil, "<Code> is not an error code" end
  return {
    code = code,
    message = leaf(el, "Message"),
    type = leaf(el, "Type"),
    request_id = leaf(root, "RequestId"),
  }
end

--- Reads an STS answer to `action`.
-- @tparam string text the answer's body
-- @tparam string action `"AssumeRole"` or `"AssumeRoleWithWebIdentity"`
-- @return `"credentials", { access_key_id, secret_access_key, session_token, expiration
-- (epoch seconds), assumed_role_arn?, account_id? }`; or `"error", { code, message?, type?,
-- request_id? }` for an `ErrorResponse`; or `nil, why` for anything else (never quoting
-- the answer's text)
function M.read(text, action)
  local root, why = M.parse(text)
  if not root then return nil, why end
  if root.ns ~= nil and root.ns ~= M.NAMESPACE then
    return nil, "the root element <" .. shown(root.name) .. "> is not in the STS namespace"
  end
  local value
  if root.name == "ErrorResponse" then
    value, why = error_of(root)
    if not value then return nil, why end
    return "error", value
  end
  if root.name ~= action .. "Response" then
    return nil, "the root element is <" .. shown(root.name) .. ">, not <" .. action .. "Response>"
  end
  value, why = credentials_of(root, action)
  if not value then return nil, why end
  return "credentials", value
end

return M
