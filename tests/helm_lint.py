#!/usr/bin/env python3
"""Runs Helm's own linter (the Helm v4 library shipped in PyPI helm-sdkpy) on a chart.

    helm_lint.py CHART [SITE_VALUES]

CHART is a chart directory or a packaged .tgz. With SITE_VALUES, the site's values are laid
over the chart's values.yaml the way `helm lint -f SITE_VALUES` does (maps merged key by key,
everything else replaced) in a copy of the chart, so the generated values.schema.json checks
the merged values.

Prints one JSON object: {"messages": [{"severity": N, "path": P}], "errors": N}.
Severity follows Helm: 1 info, 2 warning, 3 error. helm-sdkpy does not pass the message text
through (Go errors serialise as `{}`), so only the severity and the path are reported.
Exit status 3 when helm-sdkpy is not installed.
"""

import asyncio
import json
import os
import shutil
import sys
import tarfile
import tempfile

try:
    import helm_sdkpy
    import yaml
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"helm-sdkpy is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return over


def chart_copy(chart, work):
    """A writable chart directory: the .tgz unpacked, or the directory copied."""
    if os.path.isdir(chart):
        dest = os.path.join(work, os.path.basename(os.path.normpath(chart)))
        shutil.copytree(chart, dest)
        return dest
    with tarfile.open(chart) as t:
        t.extractall(work, filter="data")
    (name,) = os.listdir(work)
    return os.path.join(work, name)


def main():
    chart = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        if len(sys.argv) > 2:
            chart = chart_copy(chart, work)
            values_file = os.path.join(chart, "values.yaml")
            with open(values_file) as f:
                values = yaml.safe_load(f) or {}
            with open(sys.argv[2]) as f:
                site = yaml.safe_load(f) or {}
            with open(values_file, "w") as f:
                yaml.safe_dump(merge(values, site), f)
        config = helm_sdkpy.Configuration(namespace="default")
        result = asyncio.run(helm_sdkpy.Lint(config).run(chart))
    messages = [
        {"severity": m.get("Severity", 0), "path": m.get("Path", "")}
        for m in result.get("Messages") or []
    ]
    print(json.dumps({"messages": messages, "errors": len(result.get("Errors") or [])}))


if __name__ == "__main__":
    main()
