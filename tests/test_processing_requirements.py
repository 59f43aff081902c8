"""Where a script's requirements come from: its package's files, its task, or its imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from runs.requirements import RequirementsError, distribution_for, resolve


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_requirements_txt_and_pyproject_in_the_package_with_the_task_field(tmp_path):
    root = package(tmp_path, {
        "main.py": "import yaml\n",
        "requirements.txt": "# pinned\nrequests==2.31.0  # http\n-r more.txt\nSome_Thing[extra] >= 1.0 ; python_version >= '3.8'\n",
        "more.txt": "tinyfmt\n",
        "pyproject.toml": '[project]\nname = "job"\ndependencies = ["tinybase>=1"]\n',
    })
    found = resolve(root, root / "main.py", "extra-tool\n", package=True)

    # Declared requirements win: the import of yaml is not consulted.
    assert found.lines == ("extra-tool", "requests==2.31.0", "some-thing[extra] >= 1.0 ; python_version >= '3.8'", "tinybase>=1", "tinyfmt")
    assert found.origin == "requirements.txt and pyproject.toml and the task's requirements field"


def test_an_include_outside_the_package_is_refused(tmp_path):
    root = package(tmp_path / "pkg", {"main.py": "", "requirements.txt": "-r ../../etc/secrets.txt\n"})
    with pytest.raises(RequirementsError, match="not a file in the package"):
        resolve(root, root / "main.py", "", package=True)


def test_broken_pyproject_names_the_file(tmp_path):
    root = package(tmp_path, {"main.py": "", "pyproject.toml": "[project\n"})
    with pytest.raises(RequirementsError, match="pyproject.toml is not valid TOML"):
        resolve(root, root / "main.py", "", package=True)


def test_imports_skip_stdlib_local_modules_optional_and_typing_only_imports(tmp_path):
    root = package(tmp_path, {
        "main.py": (
            "from __future__ import annotations\n"
            "import os, sys, json, csv\n"
            "import helpers\n"
            "from lib.util import thing\n"
            "from . import sibling\n"
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import mypy_extensions\n"
            "try:\n    import ujson as fast\nexcept (ImportError, AttributeError):\n    import json as fast\n"
            "def later():\n    import PIL.Image\n"
        ),
        "helpers.py": "import dateutil.parser\n",
        "lib/__init__.py": "",
        "lib/util.py": "from sklearn import svm\nfrom google.cloud import storage\nfrom azure.storage.blob import BlobClient\n",
        "unused.py": "import never_imported_by_main\n",
        "tests/test_main.py": "import pytest\n",
    })
    found = resolve(root, root / "main.py", "", package=True)

    assert found.origin == "the script's imports"
    assert found.lines == ("azure-storage-blob", "google-cloud-storage", "pillow", "python-dateutil", "scikit-learn")


def test_a_lone_scripts_field_is_used_and_its_folder_files_are_not(tmp_path):
    root = package(tmp_path, {"script.py": "import yaml\n", "requirements.txt": "ignored\n"})
    assert resolve(root, root / "script.py", "", package=False).lines == ("pyyaml",)
    assert resolve(root, root / "script.py", "tinyfmt\n", package=False).lines == ("tinyfmt",)


def test_a_script_python_cannot_parse_needs_nothing(tmp_path):
    root = package(tmp_path, {"script.py": "import yaml\nthis is not python(\n"})
    assert resolve(root, root / "script.py", "", package=False).lines == ()


@pytest.mark.parametrize(("module", "dist"), [
    ("yaml", "PyYAML"), ("dateutil.tz", "python-dateutil"), ("PIL", "Pillow"), ("sklearn.linear_model", "scikit-learn"),
    ("bs4", "beautifulsoup4"), ("cv2", "opencv-python"), ("google.protobuf.json_format", "protobuf"),
    ("azure.storage.blob", "azure-storage-blob"), ("azure.identity.aio", "azure-identity"),
    ("google.cloud.bigquery.Client", "google-cloud-bigquery"), ("google.cloud", None), ("requests", "requests"), ("pandas", "pandas"),
    ("os.path", None), ("tomllib", None), ("__future__", None), ("google", None),
])
def test_import_names_map_to_distributions(module, dist):
    assert distribution_for(module) == dist
