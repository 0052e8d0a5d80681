#!/usr/bin/python3
"""Check libocispec/spec.def against the runtime-spec JSON Schema.

Walks the schema shipped by Debian's golang-github-opencontainers-specs-dev
(config-schema.json and state-schema.json, following every $ref, allOf and
anyOf) and checks that each Linux/POSIX property path has a field in
spec.def, with a compatible kind:

  string -> STRING            boolean -> BOOL
  integer -> INT64/UINT64/INT32/UINT32/UINT16
  array of strings -> STRARR  array of integers -> U32ARR
  array of objects -> OBJARR  object with properties -> OBJ
  map of strings -> STRMAP    map of objects -> OBJMAP

Missing properties and kind mismatches fail the test.  Integer ranges the C
type cannot hold and differences in required-ness are reported as notes only:
spec.def follows the prose of runtime-spec 1.2, which this (older) schema
does not always match.  windows, solaris, vm and zos are skipped.

Then every config field of spec.def (a superset of the schema: runtime-spec
1.2) must have a row in docs/fields.md saying that it is implemented, refused,
or host-dependent, with the tests that show it: each test named must exist
(a `def test_...` in tests/integration/*.py or tests/security/*.py, a
function in tests/unit/*.c).  A field without a row, a row for no field, an
unknown status or a test that does not exist fail.  This part runs even
without the schema.

Exit status: 0 all covered, 1 something missing, 77 (automake's "skipped")
when the schema is not installed and the field table is fine.
OCI_SCHEMA_DIR overrides where the schema lives.
"""

import json
import os
import re
import sys

SCHEMA_DIR = os.environ.get(
    "OCI_SCHEMA_DIR",
    "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")
SKIPPED_PLATFORMS = {"windows", "solaris", "vm", "zos"}
DOCUMENTS = [("config-schema.json", "oci_config"), ("state-schema.json", "oci_state")]

INT_RANGES = {
    "INT64": (-2**63, 2**63 - 1),
    "UINT64": (0, 2**64 - 1),
    "INT32": (-2**31, 2**31 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT16": (0, 2**16 - 1),
}
KINDS = {"STRING", "BOOL", "STRARR", "U32ARR", "STRMAP", "OBJ", "OBJARR", "OBJMAP"} | set(INT_RANGES)
WITH_SUBTYPE = {"OBJ", "OBJARR", "OBJMAP"}


def find_spec_def():
    top = os.environ.get("TOP_SRCDIR")
    if not top:
        top = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
    return os.path.join(top, "libocispec", "spec.def")


def parse_spec_def(path):
    """Return {type name: {json name: (kind, c_name, subtype or None, required)}}."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    types = {}
    current = None
    field_re = re.compile(r"^\s*([A-Z0-9]+)\s*\((.*)\)\s*$")
    for lineno, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*#\s*define\s+T\s+(\w+)\s*$", line)
        if m:
            current = m.group(1)
            if current in types:
                raise SystemExit("%s:%d: type %s defined twice" % (path, lineno, current))
            types[current] = {}
            continue
        if re.match(r"^\s*#\s*undef\s+T\b", line):
            current = None
            continue
        m = field_re.match(line)
        if not m or m.group(1) not in KINDS:
            continue
        if current is None:
            raise SystemExit("%s:%d: field outside a #define T block" % (path, lineno))
        kind = m.group(1)
        args = [a.strip() for a in m.group(2).split(",")]
        want = 4 if kind in WITH_SUBTYPE else 3
        if len(args) != want or not re.fullmatch(r'"[^"]*"', args[1]):
            raise SystemExit("%s:%d: cannot parse %r" % (path, lineno, line.strip()))
        json_name = args[1][1:-1]
        sub = args[2] if kind in WITH_SUBTYPE else None
        flags = args[-1]
        required = "REQ" in re.split(r"\s*\|\s*", flags)
        if json_name in types[current]:
            raise SystemExit("%s:%d: %s.%s declared twice" % (path, lineno, current, json_name))
        types[current][json_name] = (kind, args[0], sub, required)
    for t, fields in types.items():
        for name, (kind, _, sub, _) in fields.items():
            if sub is not None and sub not in types:
                raise SystemExit("spec.def: %s.%s names unknown type %s" % (t, name, sub))
    return types


class Schema:
    """All schema files of a directory, with $ref resolution."""

    def __init__(self, directory):
        self.dir = directory
        self.files = {}

    def load(self, name):
        if name not in self.files:
            with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                self.files[name] = json.load(f)
        return self.files[name]

    def deref(self, node, fname):
        """Follow $ref chains; returns (node, file it lives in)."""
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            target, _, pointer = ref.partition("#")
            fname = target or fname
            if (fname, pointer) in seen:
                raise SystemExit("schema: $ref loop at %s#%s" % (fname, pointer))
            seen.add((fname, pointer))
            node = self.load(fname)
            for part in [p for p in pointer.split("/") if p]:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, fname

    def shape(self, node, fname):
        """Classify a schema node; merges allOf/anyOf/oneOf alternatives.

        Returns a dict with 'type' one of object, map, array, string, integer,
        boolean, any; objects carry 'props' {name: (node, file)} and
        'required'; maps and arrays carry 'item' (node, file); integers
        'min' and 'max' (None when unbounded)."""
        node, fname = self.deref(node, fname)
        props, required, types, items, mapval = {}, set(), set(), [], []
        lo, hi = [], []
        parts = [(node, fname)]
        for key in ("allOf", "anyOf", "oneOf"):
            for alt in node.get(key, []):
                parts.append(self.deref(alt, fname))
        for part, pf in parts:
            t = part.get("type")
            if isinstance(t, list):
                types.update(x for x in t if x != "null")
            elif t:
                types.add(t)
            for k, v in part.get("properties", {}).items():
                props[k] = (v, pf)
            required.update(part.get("required", []))
            if isinstance(part.get("additionalProperties"), dict):
                mapval.append((part["additionalProperties"], pf))
            for v in part.get("patternProperties", {}).values():
                mapval.append((v, pf))
            if "items" in part:
                items.append((part["items"], pf))
            if "minimum" in part:
                lo.append(part["minimum"])
            if "maximum" in part:
                hi.append(part["maximum"])
            if part is not node:
                # a nested alternative may itself be composite
                sub = self.shape(part, pf)
                if sub["type"] == "object":
                    props.update(sub["props"])
                    required.update(sub["required"])
                    types.add("object")
                elif sub["type"] != "any":
                    types.add(sub["type"] if sub["type"] != "map" else "object")
                    if sub["type"] == "integer":
                        if sub["min"] is not None:
                            lo.append(sub["min"])
                        if sub["max"] is not None:
                            hi.append(sub["max"])
                    if sub["type"] == "map":
                        mapval.append(sub["item"])
                    if sub["type"] == "array":
                        items.append(sub["item"])
        if len(types) > 1:
            raise SystemExit("schema: ambiguous type %s in %s" % (sorted(types), fname))
        t = types.pop() if types else ("object" if props or mapval else "any")
        if t == "object" and mapval and not props:
            return {"type": "map", "item": mapval[0]}
        if t == "object":
            return {"type": "object", "props": props, "required": required}
        if t == "array":
            return {"type": "array", "item": items[0] if items else ({}, fname)}
        if t == "integer":
            return {"type": "integer", "min": max(lo) if lo else None, "max": min(hi) if hi else None}
        return {"type": t}


class Checker:
    def __init__(self, schema, types):
        self.schema = schema
        self.types = types
        self.checked = 0
        self.problems = []
        self.notes = []
        self.seen_fields = set()

    def check_integer(self, path, kind, shape):
        if kind not in INT_RANGES:
            self.problems.append("%s: schema says integer, spec.def has %s" % (path, kind))
            return
        cmin, cmax = INT_RANGES[kind]
        smin, smax = shape["min"], shape["max"]
        if (smin is not None and smin < cmin) or (smax is not None and smax > cmax):
            self.notes.append("%s: schema range [%s, %s] is wider than %s [%d, %d]"
                              % (path, smin, smax, kind, cmin, cmax))

    def check_value(self, path, field, shape, where):
        """Does spec.def field (kind, c_name, sub, req) match the schema shape?"""
        kind, _, sub, _ = field
        t = shape["type"]
        if t == "any":
            self.notes.append("%s: schema gives no type (%s)" % (path, where))
        elif t == "string":
            if kind != "STRING":
                self.problems.append("%s: schema says string, spec.def has %s" % (path, kind))
        elif t == "boolean":
            if kind != "BOOL":
                self.problems.append("%s: schema says boolean, spec.def has %s" % (path, kind))
        elif t == "integer":
            self.check_integer(path, kind, shape)
        elif t == "object":
            if kind != "OBJ":
                self.problems.append("%s: schema says object, spec.def has %s" % (path, kind))
            else:
                self.check_object(path, sub, shape, where)
        elif t == "map":
            item = self.schema.shape(*shape["item"])
            if item["type"] == "string":
                if kind != "STRMAP":
                    self.problems.append("%s: schema says map of strings, spec.def has %s" % (path, kind))
            elif item["type"] == "object":
                if kind != "OBJMAP":
                    self.problems.append("%s: schema says map of objects, spec.def has %s" % (path, kind))
                else:
                    self.check_object(path + "[*]", sub, item, where)
            else:
                self.problems.append("%s: map of %s not representable" % (path, item["type"]))
        elif t == "array":
            item = self.schema.shape(*shape["item"])
            if item["type"] == "string":
                if kind != "STRARR":
                    self.problems.append("%s: schema says array of strings, spec.def has %s" % (path, kind))
            elif item["type"] == "integer":
                if kind != "U32ARR":
                    self.problems.append("%s: schema says array of integers, spec.def has %s" % (path, kind))
                else:
                    self.check_integer(path + "[]", "UINT32", item)
            elif item["type"] == "object":
                if kind != "OBJARR":
                    self.problems.append("%s: schema says array of objects, spec.def has %s" % (path, kind))
                else:
                    self.check_object(path + "[]", sub, item, where)
            else:
                self.problems.append("%s: array of %s not representable" % (path, item["type"]))
        else:
            self.problems.append("%s: unexpected schema type %s" % (path, t))

    def check_object(self, path, type_name, shape, where, top=False):
        fields = self.types[type_name]
        for name in sorted(shape["props"]):
            if top and name in SKIPPED_PLATFORMS:
                continue
            node, fname = shape["props"][name]
            p = "%s.%s" % (path, name) if path else name
            self.checked += 1
            if name not in fields:
                self.problems.append("%s: missing (no \"%s\" field in spec.def type %s; schema %s)"
                                     % (p, name, type_name, fname))
                continue
            self.seen_fields.add((type_name, name))
            field = fields[name]
            if name in shape["required"] and not field[3]:
                self.notes.append("%s: required by the schema, optional in spec.def" % p)
            elif name not in shape["required"] and field[3]:
                self.notes.append("%s: REQ in spec.def, optional in this schema" % p)
            self.check_value(p, field, self.schema.shape(node, fname), fname)


STATUSES = {"implemented", "refused", "host"}
TEST_DIRS = ("tests/integration", "tests/security", "tests/unit")


def config_paths(types, t="oci_config", prefix=""):
    """Every field path of the config as docs/fields.md spells it."""
    out = []
    for name, (kind, _, sub, _) in types[t].items():
        p = prefix + ("." if prefix else "") + name
        out.append(p)
        if sub:
            out += config_paths(types, sub, p + ("[]" if kind == "OBJARR" else "[*]" if kind == "OBJMAP" else ""))
    return out


def test_exists(top, ref, cache={}):
    fname, _, func = ref.partition("::")
    if not func:
        return False
    for d in TEST_DIRS:
        path = os.path.join(top, d, fname)
        if os.path.isfile(path):
            if path not in cache:
                with open(path, encoding="utf-8") as f:
                    cache[path] = f.read()
            pat = r"^def %s\(" if path.endswith(".py") else r"^%s \("
            return re.search(pat % re.escape(func), cache[path], re.M) is not None
    return False


def check_field_table(types, top):
    """docs/fields.md against spec.def; returns the problems."""
    problems, rows = [], []
    path = os.path.join(top, "docs", "fields.md")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            m = re.match(r"^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|", line)
            if m:
                rows.append((lineno, m.group(1), m.group(2), re.findall(r"`([^`]+)`", m.group(3))))
    fields = config_paths(types)
    covered = set()
    for lineno, pat, status, tests in rows:
        where = "docs/fields.md:%d `%s`" % (lineno, pat)
        if pat.endswith(".*"):
            base = pat[:-2]
            hit = [p for p in fields if p == base or p.startswith(base + ".") or p.startswith(base + "[")]
        else:
            hit = [p for p in fields if p == pat]
        if not hit:
            problems.append("%s: no such field in spec.def" % where)
        covered.update(hit)
        if status not in STATUSES:
            problems.append("%s: status `%s` is none of %s" % (where, status, sorted(STATUSES)))
        if not tests:
            problems.append("%s: names no test" % where)
        for t in tests:
            if not test_exists(top, t):
                problems.append("%s: test `%s` does not exist" % (where, t))
    for p in fields:
        if p not in covered:
            problems.append("%s: neither marked implemented nor refused in docs/fields.md" % p)
    print("schema_coverage: %d config fields, %d rows in docs/fields.md" % (len(fields), len(rows)))
    return problems


def main():
    spec_def = find_spec_def()
    types = parse_spec_def(spec_def)
    top = os.path.dirname(os.path.dirname(spec_def))
    table_problems = check_field_table(types, top)
    for p in table_problems:
        print("FAIL: " + p)
    if not os.path.isdir(SCHEMA_DIR):
        print("SKIP: runtime-spec schema not found in %s "
              "(apt-get install golang-github-opencontainers-specs-dev)" % SCHEMA_DIR)
        return 1 if table_problems else 77
    schema = Schema(SCHEMA_DIR)
    checker = Checker(schema, types)
    for fname, type_name in DOCUMENTS:
        if type_name not in types:
            checker.problems.append("spec.def has no type %s for %s" % (type_name, fname))
            continue
        shape = schema.shape(schema.load(fname), fname)
        checker.check_object("", type_name, shape, fname, top=True)

    reachable = set()
    stack = [t for _, t in DOCUMENTS if t in types]
    while stack:
        t = stack.pop()
        if t in reachable:
            continue
        reachable.add(t)
        stack.extend(f[2] for f in types[t].values() if f[2])
    beyond = sorted("%s.%s" % (t, n) for t in reachable for n in types[t]
                    if (t, n) not in checker.seen_fields)

    for n in checker.notes:
        print("note: " + n)
    if beyond:
        print("note: %d spec.def fields are newer than this schema (not checked): %s"
              % (len(beyond), ", ".join(beyond)))
    for p in checker.problems:
        print("FAIL: " + p)
    print("schema_coverage: %d schema properties checked against %s (%d types), %d problem(s)"
          % (checker.checked, spec_def, len(types), len(checker.problems)))
    return 1 if checker.problems or table_problems else 0


if __name__ == "__main__":
    sys.exit(main())
