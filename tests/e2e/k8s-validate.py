#!/usr/bin/python3
"""k8s-validate.py FILE... - check Kubernetes manifests against the API's
own schema, offline: every object is read into the models of Kubernetes'
Python client (Debian's python3-kubernetes, generated from the API's
OpenAPI spec), every field must be one the model has (a typo is an error,
as kubectl's strict validation makes it), every value must have the
field's type, and the models' own required-field checks run. Prints one
line per object, "Kind name"; exits 1 naming the first bad field.

kubectl's --dry-run needs an API server even on the client side (it asks
it what kinds there are); with none to run here, this is the check that
needs none."""
import re
import sys

import kubernetes.client as k8s
import yaml

KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "Service"): "V1Service",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}
PRIMITIVE = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def fail(path, msg):
    sys.exit("k8s-validate: %s: %s" % (path, msg))


def check(value, typ, path):
    if typ == "object":  # int-or-string, quantities, raw JSON
        return
    if typ in PRIMITIVE:
        if typ != "bool" and isinstance(value, bool) or not isinstance(value, PRIMITIVE[typ]):
            fail(path, "%r is not a %s" % (value, typ))
        return
    if typ == "datetime":
        return
    m = re.match(r"list\[(.+)\]$", typ)
    if m:
        if not isinstance(value, list):
            fail(path, "is not a list")
        for i, v in enumerate(value):
            check(v, m.group(1), "%s[%d]" % (path, i))
        return
    m = re.match(r"dict\(str, (.+)\)$", typ)
    if m:
        if not isinstance(value, dict):
            fail(path, "is not a map")
        for k, v in value.items():
            check(v, m.group(1), "%s.%s" % (path, k))
        return
    klass = getattr(k8s, typ)
    if not isinstance(value, dict):
        fail(path, "is not an object (%s)" % typ)
    by_json = {j: a for a, j in klass.attribute_map.items()}
    for key, v in value.items():
        if key not in by_json:
            fail(path, "unknown field %r (%s has %s)" % (key, typ, ", ".join(sorted(by_json))))
        check(v, klass.openapi_types[by_json[key]], "%s.%s" % (path, key))


def main():
    api = k8s.ApiClient()
    for f in sys.argv[1:]:
        with open(f) as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
        for d in docs:
            if d.get("kind") == "Kustomization":
                continue
            name = KINDS.get((d.get("apiVersion"), d.get("kind")))
            if not name:
                fail(f, "no model for %s %s" % (d.get("apiVersion"), d.get("kind")))
            where = "%s: %s %s" % (f, d["kind"], d.get("metadata", {}).get("name"))
            check(d, name, where)
            try:  # the models' own checks (required fields, enums)
                api._ApiClient__deserialize(d, name)
            except ValueError as e:
                fail(where, str(e))
            print("%s %s" % (d["kind"], d["metadata"]["name"]))


main()
