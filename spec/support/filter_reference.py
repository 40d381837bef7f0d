#!/usr/bin/python3
"""An independent reference for Lambda event filtering (FilterCriteria) on
DynamoDB stream records, written from AWS's documentation and event-ruler's
documented behaviour (../shared/reference/lambda-processing.md in the issue),
plus the decisions filter.c lists where AWS is silent. It shares no code with
csrc/filter.c: spec/unit/core/filter_spec.lua runs both and fails on any
disagreement.

  filter_reference.py table FILE       each case of FILE (JSON list of
                                       {patterns, record}) -> one line: true,
                                       false or invalid
  filter_reference.py generate SEED N  N random cases, one JSON line each:
                                       {patterns, records, results} where
                                       results is a list of booleans or the
                                       string "invalid"
"""
import json
import random
import re
import sys
from decimal import Decimal, InvalidOperation

MAX_FILTERS = 5
MAX_PATTERN_CHARS = 4096
MAX_COMBINATIONS = 1000
MAX_PATTERN_DEPTH = 64
OPERATORS = {"anything-but", "cidr", "equals-ignore-case", "exists", "numeric",
             "prefix", "suffix", "wildcard", "=", "<", "<=", ">", ">="}


class Invalid(Exception):
    pass


# ---- values -----------------------------------------------------------------

class Num:
    """A JSON number of the record or pattern, with its exact value when it
    fits DynamoDB's limits (38 significant digits, 1E-130 .. 9.99E+125)."""

    def __init__(self, text):
        self.text = text
        self.value = dynamodb_decimal(text)


class NStr(str):
    """A string DynamoDB reads as a number (under "N", in "NS")."""


DECIMAL_SYNTAX = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


def dynamodb_decimal(text):
    if not DECIMAL_SYNTAX.match(text):
        return None
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if d == 0:
        return Decimal(0)
    digits = "".join(map(str, d.as_tuple().digits)).strip("0")  # exact: normalize() would round to 28
    if len(digits) > 38 or not -130 <= d.adjusted() <= 125:
        return None
    return d


def fold(s):
    """Simple (one to one) case mapping per code point: upper, then lower."""
    out = []
    for ch in s:
        up = ch.upper()
        ch = up if len(up) == 1 else ch
        low = ch.lower()
        out.append(low if len(low) == 1 else ch)
    return "".join(out)


def no_constants(name):
    raise ValueError("not JSON: " + name)


# ---- records ----------------------------------------------------------------

class Made(dict):
    """An object made from a dotted record key."""


def record_object(pairs):
    obj = {}
    for key, value in pairs:
        last = key.rsplit(".", 1)[-1]
        if last == "N" and isinstance(value, str):
            value = NStr(value)
        if last == "NS" and isinstance(value, list):
            value = [NStr(v) if isinstance(v, str) else v for v in value]
        parts = key.split(".")
        for part in reversed(parts[1:]):
            value = Made({part: value})
        put(obj, parts[0], value)
    return obj


def put(obj, key, value):
    old = obj.get(key)
    if isinstance(old, dict) and isinstance(value, dict) and (isinstance(old, Made) or isinstance(value, Made)):
        for k, v in value.items():
            put(old, k, v)
    else:
        obj.pop(key, None)
        obj[key] = value


def read_record(text):
    rec = json.loads(text, object_pairs_hook=record_object, parse_float=Num, parse_int=Num,
                     parse_constant=no_constants)
    ident = rec.get("userIdentity")
    if isinstance(ident, dict):
        # Lambda's names for what GetRecords calls PrincipalId / Type
        for wire, lam in (("PrincipalId", "principalId"), ("Type", "type")):
            if wire in ident:
                ident[lam] = ident.pop(wire)
    return rec


# ---- patterns ---------------------------------------------------------------

class Obj(list):
    """A pattern object: its members in order, duplicate keys kept."""


class Node:
    def __init__(self):
        self.fields = {}
        self.matchers = None
        self.ors = []


def pattern_number(value):
    if not isinstance(value, Num) or value.value is None:
        raise Invalid("number beyond 38 digits or DynamoDB's range")
    return value.value


def string_or_folded(value):
    if isinstance(value, str):
        return ("plain", value)
    if isinstance(value, Obj) and len(value) == 1 and value[0][0] == "equals-ignore-case" \
            and isinstance(value[0][1], str):
        return ("folded", value[0][1])
    raise Invalid("prefix/suffix value")


def numeric(spec):
    if not isinstance(spec, list) or len(spec) not in (2, 4):
        raise Invalid("numeric shape")
    ops = {"=": None, "<": None, "<=": None, ">": None, ">=": None}
    if not isinstance(spec[0], str) or spec[0] not in ops or not isinstance(spec[1], Num):
        raise Invalid("numeric operator")
    lo = hi = None
    if spec[0] == "=":
        lo = hi = (">=", pattern_number(spec[1]))
        hi = ("<=", lo[1])
    elif spec[0] in (">", ">="):
        lo = (spec[0], pattern_number(spec[1]))
    else:
        hi = (spec[0], pattern_number(spec[1]))
    if len(spec) == 4:
        if spec[0] not in (">", ">=") or spec[2] not in ("<", "<=") or not isinstance(spec[3], Num):
            raise Invalid("numeric range")
        hi = (spec[2], pattern_number(spec[3]))
        if lo[1] >= hi[1]:
            raise Invalid("numeric range order")
    return ("numeric", lo, hi)


def anything_but(spec):
    if isinstance(spec, str):
        return ("but-strings", {spec})
    if isinstance(spec, Num):
        return ("but-numbers", [pattern_number(spec)])
    if isinstance(spec, list) and not isinstance(spec, Obj) and spec:
        if all(isinstance(v, str) for v in spec):
            return ("but-strings", set(spec))
        if all(isinstance(v, Num) for v in spec):
            return ("but-numbers", [pattern_number(v) for v in spec])
        raise Invalid("anything-but list")
    if isinstance(spec, Obj) and len(spec) == 1:
        op, value = spec[0]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise Invalid("anything-but " + op)
        if op == "equals-ignore-case":
            return ("but-folded", {fold(v) for v in values})
        if op in ("prefix", "suffix"):
            if "" in values:
                raise Invalid("empty anything-but prefix")
            return ("but-" + op, values)
    raise Invalid("anything-but")


def matcher(item):
    if item is True or item is False or item is None:
        return ("literal", item)
    if isinstance(item, str):
        return ("string", item)
    if isinstance(item, Num):
        return ("number", pattern_number(item))
    if not isinstance(item, Obj):
        raise Invalid("a matcher cannot be an array")
    if len(item) != 1:
        raise Invalid("an operator object has one key")
    op, value = item[0]
    if op in ("prefix", "suffix"):
        how, s = string_or_folded(value)
        return (op + "-" + how, fold(s) if how == "folded" else s)
    if op == "equals-ignore-case":
        if not isinstance(value, str):
            raise Invalid("equals-ignore-case")
        return ("equals-folded", fold(value))
    if op == "exists":
        if value is not True and value is not False:
            raise Invalid("exists")
        return ("exists", value)
    if op == "numeric":
        return numeric(value)
    if op == "anything-but":
        return anything_but(value)
    raise Invalid("operator " + op)


def is_object(v):
    return isinstance(v, Obj)


def compile_object(pairs, node, in_or, depth):
    for key, value in pairs:
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(is_object(v) and v for v in value):
                raise Invalid("$or")
            alts = []
            for alt in value:
                a = Node()
                compile_object(alt, a, True, depth + 1)
                alts.append(a)
            node.ors.append(alts)
            continue
        if in_or and key in OPERATORS:
            raise Invalid("operator name in $or")
        target = node
        parts = key.split(".")
        if depth + len(parts) > 2 * MAX_PATTERN_DEPTH:
            raise Invalid("path too deep")
        for part in parts:
            target = target.fields.setdefault(part, Node())
        if is_object(value):
            if not value:
                raise Invalid("empty object")
            compile_object(value, target, False, depth + len(parts))
        elif isinstance(value, list):
            if not value:
                raise Invalid("empty array")
            target.matchers = [matcher(v) for v in value]
        else:
            raise Invalid("leaf must be an array")


def json_depth(v):
    """Levels of nesting, a scalar counting as one."""
    if isinstance(v, Obj):
        return 1 + max((json_depth(x[1]) for x in v), default=0)
    if isinstance(v, list):
        return 1 + max((json_depth(x) for x in v), default=0)
    return 1


def combinations(node):
    total = 1
    for child in node.fields.values():
        total = min(total * combinations(child), MAX_COMBINATIONS + 1)
    for alts in node.ors:
        total = min(total * sum(combinations(a) for a in alts), MAX_COMBINATIONS + 1)
    return total


def compile_pattern(text):
    if len(text) > MAX_PATTERN_CHARS:
        raise Invalid("too long")
    try:
        # objects as lists of pairs: keeps duplicate keys, in order
        tree = json.loads(text, object_pairs_hook=Obj, parse_float=Num, parse_int=Num,
                          parse_constant=no_constants)
    except ValueError:
        raise Invalid("JSON")
    if not is_object(tree) or not tree:
        raise Invalid("not a non-empty object")
    if json_depth(tree) > MAX_PATTERN_DEPTH:
        raise Invalid("nested too deeply")
    root = Node()
    compile_object(tree, root, False, 0)
    if combinations(root) > MAX_COMBINATIONS:
        raise Invalid("too many $or combinations")
    return root


def compile_criteria(texts):
    if not 1 <= len(texts) <= MAX_FILTERS:
        raise Invalid("filter count")
    return [compile_pattern(t) for t in texts]


# ---- matching ---------------------------------------------------------------

ABSENT = object()


def leaf_values(v):
    if v is ABSENT or isinstance(v, dict):
        return []
    if isinstance(v, list):
        return [x for e in v for x in leaf_values(e)]
    return [v]


def flat_elements(v):
    out = []
    for e in v:
        out.extend(flat_elements(e) if isinstance(e, list) else [e])
    return out


def as_number(v, dynamodb_strings):
    if isinstance(v, Num):
        return v.value
    if dynamodb_strings and isinstance(v, NStr):
        return dynamodb_decimal(str(v))
    return None


def in_range(lo, hi, d):
    if lo is not None and not (d > lo[1] if lo[0] == ">" else d >= lo[1]):
        return False
    if hi is not None and not (d < hi[1] if hi[0] == "<" else d <= hi[1]):
        return False
    return True


def accepts(m, v):
    kind = m[0]
    is_str = isinstance(v, str)
    if kind == "literal":
        return v is m[1]
    if kind == "string":
        return is_str and v == m[1]
    if kind == "number":
        return as_number(v, False) == m[1] and as_number(v, False) is not None
    if kind == "prefix-plain":
        return is_str and v.startswith(m[1])
    if kind == "suffix-plain":
        return is_str and v.endswith(m[1])
    if kind == "prefix-folded":
        return is_str and fold(v).startswith(m[1])
    if kind == "suffix-folded":
        return is_str and fold(v).endswith(m[1])
    if kind == "equals-folded":
        return is_str and fold(v) == m[1]
    if kind == "exists":
        return m[1]
    if kind == "numeric":
        d = as_number(v, True)  # our extension: DynamoDB N strings too
        return d is not None and in_range(m[1], m[2], d)
    if kind == "but-strings":
        return not (is_str and v in m[1])
    if kind == "but-numbers":
        d = as_number(v, False)
        return not (d is not None and d in m[1])
    if kind == "but-prefix":
        return not (is_str and any(v.startswith(p) for p in m[1]))
    if kind == "but-suffix":
        return not (is_str and any(v.endswith(p) for p in m[1]))
    if kind == "but-folded":
        return not (is_str and fold(v) in m[1])
    raise AssertionError(kind)


def node_matches(node, v):
    if node.matchers is not None:
        values = leaf_values(v)
        if values:
            ok = any(accepts(m, x) for x in values for m in node.matchers)
        else:
            ok = ("exists", False) in node.matchers
        if not ok:
            return False
    if not node.fields and not node.ors:
        return True
    if isinstance(v, list):
        elements = flat_elements(v)
        if not elements:
            return object_matches(node, ABSENT)
        return any(object_matches(node, e) for e in elements)
    return object_matches(node, v)


def object_matches(node, v):
    for key, child in node.fields.items():
        value = v.get(key, ABSENT) if isinstance(v, dict) else ABSENT
        if not node_matches(child, value):
            return False
    return all(any(object_matches(alt, v) for alt in alts) for alts in node.ors)


def evaluate(texts, records):
    """A list of booleans, one per record text, or "invalid"."""
    try:
        roots = compile_criteria(texts)
    except Invalid:
        return "invalid"
    out = []
    for text in records:
        rec = read_record(text)
        out.append(any(object_matches(r, rec) for r in roots))
    return out


# ---- random cases -------------------------------------------------------------

NAMES = ["a", "b", "status", "n", "tags", "x", "x.y", "x.S", "nested"]
STRINGS = ["", "a", "A", "abc", "ABC", "abc ", "done", "Done", "new", "école", "ÉCOLE", "init-1", "post-init",
           "x.png", "x.PNG", "101", "-3", "null", "true", "COMPANY#1000", "PRODUCT#X", "ORDER#1",
           "Straße", "STRAẞE", "σοφίας", "ΣΟΦΊΑΣ", "жук", "ЖУК", "ǅ", "ǆ", "😀a", "😀A"]
NUMBERS = ["0", "1", "-1", "101", "100", "100.0", "1E+2", "1e2", "-3", "42", "0.5", ".5", "5.", "-0.001",
           "1.5E-7", "12345678901234567890123456789012345678", "123456789012345678901234567890123456789",
           "9.99E+125", "1E-130", "1E+126", "1E-131", "99999999999999999999999999999999999999"]


def rand_av(rng, depth):
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["L", "M"] if depth < 3 else [])
    k = rng.choice(kinds)
    if k == "S":
        return {"S": rng.choice(STRINGS)}
    if k == "N":
        return {"N": rng.choice(NUMBERS)}
    if k == "B":
        return {"B": rng.choice(["", "AAEC", "YWJj"])}
    if k == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if k == "NULL":
        return {"NULL": True}
    if k in ("SS", "NS", "BS"):
        pool = {"SS": STRINGS, "NS": NUMBERS, "BS": ["AAEC", "YWJj", "eHl6"]}[k]
        return {k: rng.sample(pool, rng.randint(1, 3))}
    if k == "L":
        return {"L": [rand_av(rng, depth + 1) for _ in range(rng.randint(0, 3))]}
    return {"M": rand_image(rng, depth + 1)}


def rand_image(rng, depth=0):
    return {name: rand_av(rng, depth) for name in rng.sample(NAMES, rng.randint(0, 4))}


def rand_number_text(rng):
    return rng.choice(["1664559083", "1664559083.0", "1.664559083E9", "26", "570", "0", "-5", "1e300", "1e-400",
                       "12345678901234567890123456789012345678", "3.5e-2"])


def rand_record(rng):
    event = rng.choice(["INSERT", "MODIFY", "REMOVE"])
    ddb = {"ApproximateCreationDateTime": "@" + rand_number_text(rng), "Keys": {"PK": rand_av(rng, 3)},
           "SequenceNumber": str(rng.randint(1, 10 ** 21)), "SizeBytes": "@" + rand_number_text(rng),
           "StreamViewType": "NEW_AND_OLD_IMAGES"}
    if event != "REMOVE" and rng.random() < 0.9:
        ddb["NewImage"] = rand_image(rng)
    if event != "INSERT" and rng.random() < 0.9:
        ddb["OldImage"] = rand_image(rng)
    rec = {"eventID": "1", "eventName": event, "eventSource": "aws:dynamodb", "dynamodb": ddb}
    r = rng.random()
    if r < 0.2:
        rec["userIdentity"] = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
    elif r < 0.3:
        rec["userIdentity"] = {"type": rng.choice(["Service", "User"]), "principalId": "dynamodb.amazonaws.com"}
    elif r < 0.35:
        rec["misc"] = rng.choice([[], [None], [[1, 2], [3]], {}, None, "", [{"k": 1}, {"k": 2}]])
    text = json.dumps(rec, ensure_ascii=rng.random() < 0.5)
    return re.sub(r'"@([^"]*)"', r"\1", text)  # raw JSON numbers, spelled as chosen


def rand_leaf_value(rng):
    r = rng.random()
    if r < 0.45:
        return json.dumps(rng.choice(STRINGS))
    if r < 0.65:
        return rng.choice(["0", "1", "-1", "101", "100", "100.0", "26", "570", "1664559083", "1.664559083E9",
                           "42", "-3", "0.5", "12345678901234567890123456789012345678"])
    return rng.choice(["true", "false", "null"])


def rand_string(rng):
    return json.dumps(rng.choice(STRINGS))


def rand_matcher(rng):
    r = rng.randint(0, 13)
    if r <= 2:
        return rand_leaf_value(rng)
    if r == 3:
        return '{"prefix":%s}' % rand_string(rng)
    if r == 4:
        return '{"suffix":%s}' % rand_string(rng)
    if r == 5:
        return '{"%s":{"equals-ignore-case":%s}}' % (rng.choice(["prefix", "suffix"]), rand_string(rng))
    if r == 6:
        return '{"equals-ignore-case":%s}' % rand_string(rng)
    if r == 7:
        return '{"exists":%s}' % rng.choice(["true", "false"])
    if r == 8:
        lo = rng.choice(["-5", "0", "26", "100", "1664559083", "0.5"])
        hi = rng.choice(["30", "101", "570", "1e10", "1664559084"])
        if rng.random() < 0.5:
            return '{"numeric":["%s",%s]}' % (rng.choice(["=", "<", "<=", ">", ">="]), lo)
        return '{"numeric":["%s",%s,"%s",%s]}' % (rng.choice([">", ">="]), lo, rng.choice(["<", "<="]), hi)
    if r == 9:
        return '{"anything-but":%s}' % rng.choice([rand_string(rng), "101", "[%s,%s]" % (rand_string(rng),
                                                                                         rand_string(rng)), "[100,26]"])
    if r == 10:
        op = rng.choice(["prefix", "suffix", "equals-ignore-case"])
        s = rng.choice([s for s in STRINGS if s] if op != "equals-ignore-case" else STRINGS)
        return '{"anything-but":{"%s":%s}}' % (op, json.dumps(s))
    return rand_leaf_value(rng)


def rand_invalid_matcher(rng):
    return rng.choice(['{"prefix":1}', '{"numeric":[">",5,">",6]}', '{"anything-but":null}', '{"EXISTS":true}',
                       '{"exists":true,"prefix":"a"}', '[1]', '{"numeric":["<",1E+200]}', '1e400',
                       '123456789012345678901234567890123456789', '{"anything-but":{"prefix":""}}'])


def leaves(value, path, out):
    """(path, JSON text of a scalar) of every leaf of a decoded record."""
    if isinstance(value, dict):
        for k, v in value.items():
            leaves(v, path + [k], out)
    elif isinstance(value, list):
        for v in value:
            leaves(v, path, out)
    elif path:
        out.append((path, value.text if isinstance(value, Num) else json.dumps(value)))
    return out


def matcher_from(rng, text):
    """A matcher built around one value of a record, likely to match it."""
    value = json.loads(text)
    if isinstance(value, str):
        return rng.choice([text, '{"prefix":%s}' % json.dumps(value[:rng.randint(0, len(value))]),
                           '{"suffix":%s}' % json.dumps(value[rng.randint(0, len(value)):]),
                           '{"equals-ignore-case":%s}' % json.dumps(value.upper()),
                           '{"anything-but":%s}' % text, '{"numeric":[">=",-1]}', '{"exists":true}'])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e100:
        return rng.choice([text, '{"numeric":["=",%s]}' % text, '{"numeric":[">",%s,"<=",%s]}' % (value - 1, text),
                           '{"anything-but":[%s]}' % text, '{"numeric":["<",0]}'])
    return rng.choice([text, '{"exists":true}', '{"exists":false}', '{"anything-but":"x"}'])


def rand_path(rng):
    image = rng.choice(["NewImage", "OldImage", "Keys"])
    name = "PK" if image == "Keys" else rng.choice(NAMES)
    choices = [
        ["eventName"],
        ["dynamodb", "SizeBytes"],
        ["dynamodb", "ApproximateCreationDateTime"],
        ["dynamodb", image, name, rng.choice(["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"])],
        ["dynamodb", image, name],
        ["dynamodb", image, name, "L", rng.choice(["S", "N", "BOOL"])],
        ["dynamodb", image, name, "M", rng.choice(NAMES), rng.choice(["S", "N", "NULL"])],
        ["dynamodb", image, name, "L", "M", rng.choice(NAMES), rng.choice(["S", "N"])],
        ["userIdentity", rng.choice(["type", "principalId"])],
        ["misc"],
        ["misc", "k"],
    ]
    return rng.choice(choices)


def nest(rng, path, leaf):
    """The JSON text of path -> leaf, some keys joined by dots."""
    if len(path) == 1:
        return '{%s:%s}' % (json.dumps(path[0]), leaf)
    if rng.random() < 0.15:
        return nest(rng, [path[0] + "." + path[1]] + path[2:], leaf)
    return '{%s:%s}' % (json.dumps(path[0]), nest(rng, path[1:], leaf))


def merge_texts(parts):
    """Objects' members side by side: duplicate keys kept (merged by the compilers)."""
    return "{" + ",".join(p[1:-1] for p in parts) + "}"


def rand_pattern(rng, records, depth=0):
    parts = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        found = leaves(read_record(rng.choice(records)), [], []) if rng.random() < 0.6 else []
        if found:
            path, text = rng.choice(found)
            matchers = [matcher_from(rng, text)] + [rand_matcher(rng) for _ in range(rng.randint(0, 1))]
        else:
            path = rand_path(rng)
            matchers = [rand_matcher(rng) for _ in range(rng.randint(1, 3))]
        rng.shuffle(matchers)
        parts.append(nest(rng, path, "[" + ",".join(matchers) + "]"))
    if rng.random() < 0.05:
        parts.append(nest(rng, rand_path(rng), "[" + rand_invalid_matcher(rng) + "]"))
    if depth == 0 and rng.random() < 0.2:
        alts = ",".join(rand_pattern(rng, records, 1) for _ in range(rng.randint(2, 3)))
        parts.append('{"$or":[%s]}' % alts)
    return merge_texts(parts)


def generate(seed, count):
    rng = random.Random(seed)
    for _ in range(count):
        records = [rand_record(rng) for _ in range(8)]
        patterns = [rand_pattern(rng, records) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        print(json.dumps({"patterns": patterns, "records": records, "results": evaluate(patterns, records)}))


def main(argv):
    if len(argv) == 3 and argv[1] == "table":
        with open(argv[2], encoding="utf-8") as f:
            for case in json.load(f):
                res = evaluate(case["patterns"], [case["record"]] if "record" in case else [])
                print("invalid" if res == "invalid" else ("true" if res and res[0] else "false"))
        return 0
    if len(argv) == 4 and argv[1] == "generate":
        generate(int(argv[2]), int(argv[3]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
