-- Writes the benchmark table into bench/README.md between its marker lines,
-- replacing what was there (bench/run.sh calls it after every run):
--   lua bench/put_table.lua TABLE_FILE README [COMMIT]
-- The table is never pasted by hand: the README's Performance section links here.
-- Loaded without arguments (loadfile(...)()), it returns { put = put } for the spec.
local BEGIN, END = "<!-- bench:table -->", "<!-- /bench:table -->"

-- readme text, table text[, commit] -> the new readme text, or nil, why.
local function put(readme, tbl, commit)
  if readme:sub(-1) ~= "\n" then readme = readme .. "\n" end
  local lines, first, last = {}, nil, nil
  for line in readme:gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
    if line == BEGIN then first = first and -1 or #lines end
    if line == END then last = last and -1 or #lines end
  end
  if not first or not last or first < 0 or last < 0 or last < first then
    return nil, ("needs one %s line, then one %s line"):format(BEGIN, END)
  end
  local out = {}
  for i = 1, first do out[i] = lines[i] end
  if commit and commit ~= "" then out[#out + 1] = "Written by `make bench` at commit " .. commit .. "." end
  out[#out + 1] = ""
  out[#out + 1] = "```"
  for line in (tbl:gsub("\n+$", "") .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  out[#out + 1] = "```"
  for i = last, #lines do out[#out + 1] = lines[i] end
  return table.concat(out, "\n") .. "\n"
end

local table_path, readme_path, commit = ...
if table_path == nil then return { put = put, BEGIN = BEGIN, END = END } end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

if not readme_path then
  io.stderr:write("usage: put_table.lua TABLE_FILE README [COMMIT]\n")
  os.exit(2)
end
local text, why = put(read(readme_path), read(table_path), commit)
if not text then
  io.stderr:write("put_table.lua: " .. readme_path .. " " .. why .. "\n")
  os.exit(1)
end
local tmp = readme_path .. ".tmp"
local f = assert(io.open(tmp, "wb"))
assert(f:write(text))
assert(f:close())
assert(os.rename(tmp, readme_path))
