"""``mgsr comfyui install``: the pack linked or copied into custom_nodes/, the bundled weights on request, and
one clear line for a folder that is not ComfyUI's or a name already taken."""

from __future__ import annotations

import shutil

from mgsr.cli import main
from mgsr.integrations.comfyui import PACK_DIR, PACK_NAME
from mgsr.model.weights import BUNDLED, bundled_path


def test_links_the_pack_and_copies_the_weights_on_request(tmp_path, capsys):
    (tmp_path / "custom_nodes").mkdir()
    assert main(["comfyui", "install", str(tmp_path), "--weights"]) == 0
    target = tmp_path / "custom_nodes" / PACK_NAME
    assert target.is_symlink() and target.resolve() == PACK_DIR
    assert (target / "__init__.py").read_text().count("comfy_entrypoint") >= 2
    for name in BUNDLED:
        copied = tmp_path / "models" / "upscale_models" / f"{name}.safetensors"
        assert copied.read_bytes() == bundled_path(name).read_bytes()
    said = capsys.readouterr().out
    assert f"linked the ComfyUI node pack to {target}" in said and "restart ComfyUI" in said
    assert main(["comfyui", "install", str(tmp_path)]) == 0  # again: the link is renewed, not refused


def test_copies_instead_and_replaces_its_own_copy(tmp_path):
    (tmp_path / "custom_nodes").mkdir()
    for _ in range(2):
        assert main(["comfyui", "install", str(tmp_path), "--copy"]) == 0
    target = tmp_path / "custom_nodes" / PACK_NAME
    assert not target.is_symlink()
    assert (target / "__init__.py").read_bytes() == (PACK_DIR / "__init__.py").read_bytes()
    assert not (tmp_path / "models").exists()  # no weights unless asked


def test_an_older_releases_copy_or_dangling_link_is_replaced(tmp_path):
    """Packs installed by the mgsr that kept the pack in mgsr/comfyui (before issue 28): a copy whose loader imports
    ``mgsr.comfyui`` and a link to that folder, gone after the upgrade; installing again repairs both."""
    target = tmp_path / "custom_nodes" / PACK_NAME
    target.mkdir(parents=True)
    loader = (PACK_DIR / "__init__.py").read_text().replace("mgsr.integrations.comfyui", "mgsr.comfyui")
    (target / "__init__.py").write_text(loader)
    assert main(["comfyui", "install", str(tmp_path), "--copy"]) == 0
    assert (target / "__init__.py").read_bytes() == (PACK_DIR / "__init__.py").read_bytes()
    shutil.rmtree(target)
    target.symlink_to(tmp_path / "old-checkout" / "mgsr" / "comfyui" / "custom_node", target_is_directory=True)
    assert main(["comfyui", "install", str(tmp_path)]) == 0
    assert target.resolve() == PACK_DIR


def test_refuses_a_folder_without_custom_nodes_and_a_foreign_pack(tmp_path, capsys):
    assert main(["comfyui", "install", str(tmp_path)]) == 1
    assert f"mgsr: error: {tmp_path} has no custom_nodes/ folder: give the ComfyUI folder" in capsys.readouterr().err
    foreign = tmp_path / "custom_nodes" / PACK_NAME
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    assert main(["comfyui", "install", str(tmp_path)]) == 1
    assert "exists and is not mgsr's pack: move it away" in capsys.readouterr().err
    assert (foreign / "__init__.py").read_text() == "NODE_CLASS_MAPPINGS = {}\n"  # left as it was
