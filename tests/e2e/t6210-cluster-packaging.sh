#!/bin/sh
# packaging/nomad and packaging/kubernetes: the cluster's job files and
# manifests parse with the engines' own parsers where this machine has them
# (HashiCorp's HCL library for Nomad's job files, built to WebAssembly as
# npm's @cdktf/hcl2json; Kubernetes' API schema through Debian's
# python3-kubernetes models, and kubectl's kustomize), and what they run is
# what e2b serve takes: every flag they pass is one of its own.
. "$(dirname "$0")/test-lib.sh"

PKG=$SRC_DIR/packaging
SDK=$SRC_DIR/tests/sdk
test_lazy_prereq HCL 'test -d "$SDK/node_modules/@cdktf/hcl2json" || (cd "$SDK" && npm ci --no-audit --no-fund >/dev/null 2>&1)'
test_lazy_prereq K8SPY '/usr/bin/python3 -c "import kubernetes, yaml"'
test_lazy_prereq KUBECTL 'command -v kubectl'

e2b serve --help | grep -o -- "--[a-z-]*" | sort -u > serve-flags
# flags of a list of arguments (one a line) that e2b serve does not take
unknown_flags() { grep -o -- "^--[a-z-]*" "$1" | sort -u | comm -23 - serve-flags; }

hcl() { # FILE -> its JSON, by HashiCorp's HCL parser
    (cd "$SDK" && node --input-type=module -e '
        import { parse } from "@cdktf/hcl2json"
        import fs from "node:fs"
        const f = process.argv[1]
        process.stdout.write(JSON.stringify(await parse(f, fs.readFileSync(f, "utf8"))))' "$1")
}

# what the Nomad job runs (job.json catalog.json): its arguments into nomad-args
check_nomad() {
    python3 - "$@" <<-\EOF
	import json, sys
	job = json.load(open(sys.argv[1]))["job"]["e2b"][0]
	assert job["type"] == "system", job["type"]
	task = job["group"]["node"][0]["task"]["serve"][0]
	assert task["driver"] == "raw_exec"
	cfg = task["config"][0]
	assert cfg["command"] == "/usr/bin/e2b" and cfg["args"][0] == "serve", cfg
	args = cfg["args"]
	for f in ("--cluster", "--node-address", "--cluster-secret-file", "--node-id", "--listen"):
	    assert f in args, f
	open("nomad-args", "w").write("\n".join(args) + "\n")
	cat = json.load(open(sys.argv[2]))["job"]["e2b-catalog"][0]
	svc = cat["group"]["catalog"][0]["service"][0]["name"]
	assert any(svc in t["data"] for t in task["template"]), "the node job does not look up " + svc
	assert cat["group"]["catalog"][0]["task"]["redis"][0]["config"][0]["command"] == "/usr/bin/redis-server"
	EOF
}
# what the DaemonSet runs (nodes.yaml catalog.yaml): its arguments into k8s-args
check_k8s() {
    /usr/bin/python3 - "$PKG/kubernetes/nodes.yaml" "$PKG/kubernetes/catalog.yaml" <<-\EOF
	import sys, yaml
	nodes = list(yaml.safe_load_all(open(sys.argv[1])))
	cat = list(yaml.safe_load_all(open(sys.argv[2])))
	ds = [d for d in nodes if d["kind"] == "DaemonSet"][0]
	c = ds["spec"]["template"]["spec"]["containers"][0]
	assert c["command"] == ["/usr/bin/e2b"] and c["args"][0] == "serve"
	args = c["args"]
	url = args[args.index("--cluster") + 1]
	svc = [d for d in cat if d["kind"] == "Service"][0]
	host = "%s.%s.svc.cluster.local:%d" % (svc["metadata"]["name"], svc["metadata"]["namespace"], svc["spec"]["ports"][0]["port"])
	assert url.startswith("redis://") and url.endswith("@" + host), (url, host)
	assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
	sts = [d for d in cat if d["kind"] == "StatefulSet"][0]
	assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
	open("k8s-args", "w").write("\n".join(args) + "\n")
	EOF
}

test_expect_success HCL 'the Nomad job files parse; a broken one does not' '
    hcl "$PKG/nomad/e2b.nomad.hcl" > job.json && hcl "$PKG/nomad/e2b-catalog.nomad.hcl" > catalog.json &&
    sed "s/^job \"e2b\" {/job \"e2b\" {{/" "$PKG/nomad/e2b.nomad.hcl" > broken.hcl &&
    ! hcl broken.hcl > /dev/null 2> err && test_grep "broken.hcl" err
'

test_expect_success HCL 'Nomad: a system job of e2b serve --cluster on every client, with flags e2b serve takes' '
    check_nomad job.json catalog.json &&
    test -z "$(unknown_flags nomad-args)"
'

test_expect_success K8SPY 'Kubernetes: every object fits the API schema; a misspelt field or a wrong type does not' '
    /usr/bin/python3 "$TEST_DIR/k8s-validate.py" "$PKG"/kubernetes/*.yaml > objects &&
    test "$(sort objects | tr "\n" ,)" = "DaemonSet e2b-node,Namespace e2b,NetworkPolicy e2b-catalog,Service e2b,Service e2b-catalog,StatefulSet e2b-catalog," &&
    sed "s/hostNetwork:/hostNetwrok:/" "$PKG/kubernetes/nodes.yaml" > bad1.yaml &&
    ! /usr/bin/python3 "$TEST_DIR/k8s-validate.py" bad1.yaml 2> err && test_grep "unknown field .hostNetwrok." err &&
    sed "s/containerPort: 3000/containerPort: three/" "$PKG/kubernetes/nodes.yaml" > bad2.yaml &&
    ! /usr/bin/python3 "$TEST_DIR/k8s-validate.py" bad2.yaml 2> err && test_grep "is not a int" err
'

test_expect_success K8SPY 'Kubernetes: the DaemonSet runs e2b serve --cluster on the catalog Service, with flags e2b serve takes' '
    check_k8s "$PKG/kubernetes/nodes.yaml" "$PKG/kubernetes/catalog.yaml" &&
    test -z "$(unknown_flags k8s-args)"
'

test_expect_success KUBECTL 'kubectl kustomize renders the set (its parser, no API server needed)' '
    HOME=$TRASH kubectl kustomize "$PKG/kubernetes" > all.yaml &&
    test "$(grep -c "^kind:" all.yaml)" = 6
'

test_lazy_prereq KUBE_API 'HOME=$TRASH kubectl version --request-timeout=3s >/dev/null 2>&1'
test_expect_success KUBECTL,KUBE_API 'kubectl apply --dry-run=client (where an API server answers)' '
    kubectl apply --dry-run=client -k "$PKG/kubernetes"
'

test_done
