"""Structural and cross-reference checks of deploy/ (called by scripts/check-deploy).

Kubernetes manifests go through kubernetes-validate (strict) against the Kubernetes JSON schemas;
the ServiceMonitor, a custom resource without a schema there, is checked against the Service it
must select. The Dockerfile is parsed with dockerfile-parse and held to the image's promises.
Every query of the dashboard and the alerts may name only metrics of the metrics table in docs/operations.md; the
dashboard's queries are written out as rules for promtool to parse.
"""
import json
import pathlib
import re
import sys

import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

root = pathlib.Path(__file__).resolve().parent.parent
work = pathlib.Path(sys.argv[1])
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


# Kubernetes
manifests = {}
for path in sorted((root / "deploy/kubernetes").glob("*.yaml")):
    for document in yaml.safe_load_all(path.read_text()):
        manifests[document["kind"]] = document
        if document["kind"] == "ServiceMonitor":
            continue
        try:
            kubernetes_validate.validate(document, "1.37.0", strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{path.name}: {error.message} at {'/'.join(map(str, error.path))}")
check(set(manifests) >= {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "ServiceMonitor",
                         "HorizontalPodAutoscaler"}, f"missing manifests: {sorted(manifests)}")
service, monitor, deployment = manifests["Service"], manifests["ServiceMonitor"], manifests["Deployment"]
check(all(service["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items()),
      "the ServiceMonitor does not select the Service")
check({e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]},
      "the ServiceMonitor scrapes a port the Service does not name")
check(all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"]), "the ServiceMonitor must scrape /metrics")
pod = deployment["spec"]["template"]["spec"]
container = pod["containers"][0]
drain = manifests["ConfigMap"]["data"]["VEO_RELAY_DRAIN_TIMEOUT"]
check(pod["terminationGracePeriodSeconds"] > int(drain.rstrip("s")) + 5,
      "terminationGracePeriodSeconds must outlast the drain timeout plus 5 s")
check(container["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness must probe /healthz")
check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness must probe /readyz")
check(pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
      and container["securityContext"]["capabilities"]["drop"] == ["ALL"], "the pod must run hardened")
check(deployment["spec"]["replicas"] >= 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate",
      "two replicas, rolling update")

# Dockerfile
dockerfile = DockerfileParser(path=str(root / "deploy/Dockerfile"))
instructions = dockerfile.structure
froms = [i["value"] for i in instructions if i["instruction"] == "FROM"]
check(len(froms) == 2 and froms[0].startswith("swift:6") and " AS build" in froms[0], f"multi-stage on swift:6: {froms}")
final = instructions[max(n for n, i in enumerate(instructions) if i["instruction"] == "FROM"):]
final_by = {}
for instruction in final:
    final_by.setdefault(instruction["instruction"], []).append(instruction["value"])
check(final_by.get("USER", ["0"])[-1].split(":")[0] not in ("0", "root"), "the image must run as a non-root user")
check(str(pod["securityContext"]["runAsUser"]) == final_by["USER"][-1].split(":")[0], "Kubernetes runAsUser must match the image's USER")
check("HEALTHCHECK" in final_by and "/healthz" in final_by["HEALTHCHECK"][-1], "HEALTHCHECK on /healthz")
check(final_by.get("EXPOSE") == ["8080"], "EXPOSE 8080")
check(json.loads(final_by["ENTRYPOINT"][-1]) == ["veo-relay"], "ENTRYPOINT [\"veo-relay\"]")
check(json.loads(final_by["CMD"][-1]) == ["serve", "--host", "0.0.0.0"], "CMD serve --host 0.0.0.0")
check(json.loads(final_by["VOLUME"][-1]) == ["/data"], "VOLUME /data")
check(any("libsqlite3-0" in run and "ca-certificates" in run and "tzdata" in run for run in final_by["RUN"]),
      "the runtime stage installs libsqlite3-0, ca-certificates, tzdata")
check(dockerfile.envs.get("VEO_RELAY_DATABASE", "").startswith("/data/"), "the SQLite file lives on /data")
build_stage = instructions[:max(n for n, i in enumerate(instructions) if i["instruction"] == "FROM")]
check([i["value"] for i in build_stage if i["instruction"] == "RUN"][-1] == "scripts/build-release /staging",
      "the build stage ends with scripts/build-release /staging, the build check-deploy repeats")
copied = sorted(i["value"].split()[0] for i in build_stage if i["instruction"] == "COPY")
check(copied == ["Package.swift", "Sources", "Tests", "scripts/build-release"],
      f"the build stage copies what check-deploy builds (Package.swift, Sources, Tests, scripts/build-release): {copied}")
# The runtime stage's variables, for check-deploy to start the binary with.
(work / "image.env").write_text("".join(f"{name}={value}\n" for name, value in dockerfile.envs.items()))

# Queries: only metrics of the metrics table (docs/operations.md).
operations = (root / "docs/operations.md").read_text()
table = operations[operations.index("| metric | type |"):]
table = table[:table.index("\n\n")]
catalogue = set(re.findall(r"^\| `([a-z_:]+)`", table, re.M))
check(len(catalogue) >= 15, f"the metrics table lists {len(catalogue)} metrics")


def metrics_in(expression):
    names = set(re.findall(r"\b([a-z_:][a-z0-9_:]*)\b(?=\s*(?:\{|\[|\)|$| ))", expression))
    return {re.sub(r"_(bucket|count|sum)$", "", n) for n in names if n.startswith(("veo_relay_", "hb_", "http_server_"))}


dashboard = json.loads((root / "deploy/grafana/veo-relay.json").read_text())
queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
alerts = yaml.safe_load((root / "deploy/prometheus/alerts.yaml").read_text())
expressions = queries + [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
for expression in expressions:
    unknown = metrics_in(expression) - catalogue
    check(not unknown, f"{expression!r} names metrics not in the metrics table (docs/operations.md): {sorted(unknown)}")
rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{n}", "expr": q} for n, q in enumerate(queries)]}]}
(work / "dashboard-queries.yaml").write_text(yaml.safe_dump(rules))

if failures:
    print("\n".join(f"deploy check failed: {f}" for f in failures), file=sys.stderr)
    sys.exit(1)
print(f"kubernetes: {len(manifests) - 1} manifests valid against the 1.37 schemas, ServiceMonitor selects the Service")
print(f"dockerfile: {len(instructions)} instructions, structure as promised")
print(f"queries: {len(queries)} dashboard and {len(expressions) - len(queries)} alert expressions name only catalogued metrics")
