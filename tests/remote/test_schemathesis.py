"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis's
command line against a real server): no request, valid or not, gets a 5xx, and status
codes, content types and bodies match the schema. Bounded: a few examples per operation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from mlpulse.cli import main

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_api_conforms(server_factory, tmp_path, capsys):
    # its own server: the run creates API keys, which switches authentication on
    db = tmp_path / "fuzz.duckdb"
    assert main(["keys", "create", "--db", str(db), "--scope", "admin"]) == 0
    key = capsys.readouterr().out.strip()
    server = server_factory("--log-level", "error", db=db)
    httpx.post(server.url + "/api/v1/models", headers={"Authorization": f"Bearer {key}"},
               json={"name": "fuzz", "version": "v1", "task": "binary"})
    here = Path(__file__).resolve().parent
    env = os.environ | {"SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                        "PYTHONPATH": f"{here}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    script = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(script), "run", f"{server.url}/openapi.json", "--checks", CHECKS,
         "--max-examples", "15", "--seed", "1", "--generation-deterministic",
         "--request-timeout", "30", "-H", f"Authorization: Bearer {key}", "--suppress-health-check", "all", "--no-color"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path, check=False,
    )
    out = result.stdout
    start = out.find("FAILURES")
    assert result.returncode == 0, out[start if start >= 0 else -6000 :][:6000] + result.stderr[-2000:]
