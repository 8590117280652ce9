"""What the bridge's tests (checks/*_test.py) share: tools/ on sys.path, torch on one thread (a missing
python3-torch fails here, loudly), the bpcheck program from $BPCHECK_CLI, and one run of export, an
optional change to the exported document, and bpcheck's judgement. Their models and wrong backwards come
from tools/torch_bridge_models.py."""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "tools")
sys.path.insert(0, TOOLS)

import torch  # noqa: E402  (a missing python3-torch fails here, loudly)

import torch_bridge as tb  # noqa: E402
from torch_bridge_models import MODELS  # noqa: E402

torch.set_num_threads(1)
BPCHECK = os.environ.get("BPCHECK_CLI")


def run_judged(export, judge, document, tamper=None):
    """paths = export(folder); tamper(doc) alters paths[document] when given; judge(paths, json_out) runs
    bpcheck. Returns (exit code, bpcheck's JSON or None, stdout + stderr)."""
    assert BPCHECK and os.path.exists(BPCHECK), "BPCHECK_CLI must name the bpcheck program"
    with tempfile.TemporaryDirectory() as d:
        paths = export(d)
        if tamper:
            with open(paths[document]) as f:
                doc = json.load(f)
            tamper(doc)
            with open(paths[document], "w") as f:
                json.dump(doc, f)
        out = os.path.join(d, "compare.json")
        r = judge(paths, out)
        result = None
        if os.path.exists(out):
            with open(out) as f:
                result = json.load(f)
        return r.returncode, result, r.stdout + r.stderr
