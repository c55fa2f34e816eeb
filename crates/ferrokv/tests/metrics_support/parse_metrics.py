"""Parses a /metrics body (stdin) with Prometheus's own Python parser and prints each
sample as `name{k="v",...} value`, labels sorted, one per line, so the Rust test can
compare values with INFO. argv[1]: `prometheus` (text 0.0.4) or `openmetrics`.
A body the parser rejects makes it raise: a non-zero exit fails the test."""
import sys

fmt = sys.argv[1]
text = sys.stdin.read()
if fmt == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families

families = 0
for family in text_string_to_metric_families(text):
    families += 1
    if family.type == "unknown":
        raise SystemExit(f"family {family.name} has no TYPE")
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value!r}")
if families < 10:
    raise SystemExit(f"only {families} families parsed")
