"""Model URLs (no server needed): the two forms, one-line errors, and the client library kept
inside ovseg.remote."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ovseg.errors import ConfigError
from ovseg.remote_url import RemoteURL, looks_remote, parse_remote_url

PACKAGE = Path(__file__).resolve().parents[1] / "ovseg"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("grpc://127.0.0.1:8001/standin", RemoteURL("grpc", "127.0.0.1", 8001, "standin")),
        ("grpc://ovms.local:9000/instance-segmentation-security-0083/versions/2",
         RemoteURL("grpc", "ovms.local", 9000, "instance-segmentation-security-0083", "2")),
        ("http://localhost:8000/v2/models/m", RemoteURL("http", "localhost", 8000, "m")),
        ("http://localhost:8000/v2/models/m/versions/1/", RemoteURL("http", "localhost", 8000, "m", "1")),
        ("https://[::1]:443/v2/models/m.v2", RemoteURL("http", "[::1]", 443, "m.v2", "", ssl=True)),
    ],
)
def test_the_two_forms(text: str, expected: RemoteURL) -> None:
    url = parse_remote_url(text)
    assert url == expected and looks_remote(text)
    assert parse_remote_url(str(url)) == url


@pytest.mark.parametrize(
    "text",
    [
        "grpc://host/m",                      # no port
        "grpc://host:8001/",                  # no model
        "grpc://host:8001/v2/models/m",       # the HTTP path over gRPC
        "http://host:8000/m",                 # no /v2/models/
        "http://host:8000/v2/models/m/versions/x",
        "grpc://host:70000/m",                # not a port
        "grpc://host:8001/m/versions/1/extra",
    ],
)
def test_a_bad_url_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_remote_url(text)
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "expected a model URL grpc://HOST:PORT/MODEL[/versions/V] or http://HOST:PORT/v2/models/MODEL[/versions/V], "
        f"got {text!r}"
    )


def test_files_and_names_are_not_urls() -> None:
    assert not looks_remote("model.xml") and not looks_remote("instance-segmentation-security-0083") and not looks_remote(3)


def test_tritonclient_is_imported_by_ovseg_remote_only() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
        if "tritonclient" in names:
            assert path.name == "remote.py", f"{path.name} imports tritonclient"


def test_the_command_line_and_import_ovseg_do_not_load_the_client() -> None:
    code = (
        "import sys, ovseg, ovseg.cli\n"
        "try:\n    ovseg.cli.main(['predict', '--help'])\nexcept SystemExit:\n    pass\n"
        "from ovseg.commands.common import refuse_local_options\n"
        "print(sorted(m for m in ('tritonclient', 'grpc', 'gevent') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_without_the_client_a_url_says_how_to_install_it(tmp_path: Path) -> None:
    # A stand-in "tritonclient" that cannot be imported, first on the path.
    (tmp_path / "tritonclient").mkdir()
    (tmp_path / "tritonclient" / "__init__.py").write_text("raise ImportError('absent')\n")
    code = "import ovseg\ntry:\n    ovseg.Segmenter('grpc://127.0.0.1:9/m')\nexcept ovseg.OvsegError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == 'a model URL needs the KServe v2 client: pip install "ovseg[remote]"'
