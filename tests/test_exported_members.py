import subprocess
import sys
import types

import llmcat


def test_public_surface_is_what_we_meant() -> None:
    # Submodules become attributes once imported; the surface is every other public name.
    exported = {
        name
        for name in dir(llmcat)
        if not name.startswith("_") and not isinstance(getattr(llmcat, name), types.ModuleType)
    }
    assert exported == set(llmcat.__all__) - {"__version__"}
    for name in llmcat.__all__:
        assert getattr(llmcat, name) is not None


def test_import_stays_light() -> None:
    code = (
        "import sys, llmcat, llmcat.integrations.ray_data, llmcat.io.tables; "
        "heavy = ('llama_cpp', 'vllm', 'torch', 'openai', 'numpy', 'ray', 'pandas', 'pyarrow'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
